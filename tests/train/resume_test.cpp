// Exact resumption: at a fixed thread count, N steps straight and N/2 steps, a checkpoint, a
// resume and N/2 more steps give byte-identical checkpoints (model, AdamW moments, step, loss
// curves), with dropout on; and a checkpoint of another kind is refused.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "qkv/error.hpp"
#include "qkv/io/safetensors.hpp"
#include "qkv/train/trainer.hpp"
#include "train/toy_run.hpp"

namespace qkv::train {
namespace {

namespace fs = std::filesystem;

std::string file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(Resume, HalfAndHalfEqualsStraightBitForBit) {
  const fs::path dir = fs::temp_directory_path() / "qkv_resume_test";
  fs::create_directories(dir);
  const std::string text = toy_text();

  trainer straight(toy_config(), text);
  straight.run.threads = 2;
  for (int i = 0; i < 8; ++i) straight.train_step();
  straight.evaluate();
  straight.save((dir / "straight.safetensors").string());

  trainer first(toy_config(), text);
  first.run.threads = 2;
  for (int i = 0; i < 4; ++i) first.train_step();
  first.save((dir / "half.safetensors").string());
  std::unique_ptr<trainer> second = trainer::resume((dir / "half.safetensors").string(), text);
  second->run.threads = 2;
  EXPECT_EQ(second->step(), 4);
  for (int i = 0; i < 4; ++i) second->train_step();
  second->evaluate();
  second->save((dir / "resumed.safetensors").string());

  EXPECT_LT(straight.train_curve().back().loss, straight.train_curve().front().loss);
  EXPECT_EQ(file_bytes(dir / "straight.safetensors"), file_bytes(dir / "resumed.safetensors"));
  fs::remove_all(dir);
}

TEST(Resume, RefusesAFileThatIsNotACheckpoint) {
  const fs::path path = fs::temp_directory_path() / "qkv_not_a_checkpoint.safetensors";
  io::write_safetensors(path.string(), {{"weight", tensor({2}, 1.0f)}});
  try {
    trainer::resume(path.string(), toy_text());
    FAIL() << "expected qkv::error";
  } catch (const error& e) {
    EXPECT_NE(std::string(e.what()).find("train.hyperparameters"), std::string::npos) << e.what();
  }
  fs::remove(path);
}

}  // namespace
}  // namespace qkv::train
