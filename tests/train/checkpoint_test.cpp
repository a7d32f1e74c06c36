// Checkpoints: the hyperparameters as named metadata entries; a checkpoint of the first format
// (tests/data/train/checkpoint_format1.safetensors, written by qkv train before the named format)
// still loads and resumes; every bad value is refused with a message naming the checkpoint and
// the entry, for training (resume) and for generation alike, never a crash or a NaN run.
#include <gtest/gtest.h>

#include <filesystem>

#include "qkv/error.hpp"
#include "qkv/io/safetensors.hpp"
#include "qkv/train/checkpoint.hpp"
#include "qkv/train/trainer.hpp"
#include "train/toy_run.hpp"

namespace qkv::train {
namespace {

namespace fs = std::filesystem;

const std::string format1_checkpoint =
    std::string(QKV_TEST_DATA) + "/train/checkpoint_format1.safetensors";

// The toy run with a seed beyond fp32's exact integers.
train_config checkpoint_config() {
  train_config c = toy_config();
  c.seed = 0xfedcba9876543210ULL;
  return c;
}

struct checkpoint_file {
  io::named_tensors tensors;
  io::metadata meta;
};

checkpoint_file read(const std::string& path) {
  checkpoint_file f;
  f.tensors = io::read_safetensors(path, &f.meta);
  return f;
}

class CheckpointFile : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir);
    trainer t(checkpoint_config(), toy_text());
    t.run.threads = 1;
    for (int i = 0; i < 3; ++i) t.train_step();
    t.evaluate();
    t.save(good);
  }
  void TearDown() override { fs::remove_all(dir); }

  // Writes `f` to a new file and expects resume (and load_trained_model, unless only training
  // is concerned) to refuse it with a message naming the file and every needle.
  void expect_refused(const checkpoint_file& f, const std::vector<std::string>& needles,
                      bool training_only = false) {
    const std::string bad = (dir / "bad.safetensors").string();
    io::write_safetensors(bad, f.tensors, f.meta);
    for (const bool generation : {false, true}) {
      if (generation && training_only) continue;
      try {
        if (generation)
          load_trained_model(bad);
        else
          trainer::resume(bad, toy_text());
        ADD_FAILURE() << "expected qkv::error for " << needles.front();
      } catch (const error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("checkpoint '" + bad + "'"), std::string::npos) << what;
        for (const std::string& n : needles) EXPECT_NE(what.find(n), std::string::npos) << what;
      }
    }
  }
  void expect_entry_refused(const std::string& entry, const std::string& value,
                            const std::vector<std::string>& needles, bool training_only = false) {
    checkpoint_file f = read(good);
    f.meta[entry] = value;
    expect_refused(f, needles, training_only);
  }

  const fs::path dir =
      fs::temp_directory_path() /
      ("qkv_checkpoint_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()));
  const std::string good = (dir / "good.safetensors").string();
};

TEST_F(CheckpointFile, HyperparametersAreNamedMetadataEntries) {
  const checkpoint_file f = read(good);
  EXPECT_EQ(f.meta.at("qkv.train.format"), "2");
  EXPECT_EQ(f.meta.at("train.heads"), "2");
  EXPECT_EQ(f.meta.at("train.batch"), "4");
  EXPECT_EQ(f.meta.at("train.lr"), "0.00200000009");  // the float, exactly
  EXPECT_EQ(f.meta.at("train.seed"), "18364758544493064720");
  EXPECT_EQ(f.meta.at("train.step"), "3");
  EXPECT_EQ(f.tensors.count("train.hyperparameters"), 0u);
  EXPECT_EQ(f.tensors.count("train.step"), 0u);
  const std::unique_ptr<trainer> t = trainer::resume(good, toy_text());
  EXPECT_EQ(t->step(), 3);
  EXPECT_EQ(t->config().seed, checkpoint_config().seed);
  EXPECT_EQ(t->config().lr, toy_config().lr);
  EXPECT_EQ(t->train_curve().size(), 3u);
  EXPECT_EQ(t->eval_curve().size(), 1u);
}

TEST_F(CheckpointFile, FirstFormatStillLoadsAndResumes) {
  // Written by the trainer before the named format (12 positional hyperparameters; seed and
  // step in 16-bit pieces): L=1, H=2, E=8, T=8, dropout 0.1, B=2, 3 steps, 1 held-out batch,
  // seed 7, evaluations after steps 2 and 3.
  const checkpoint_file f = read(format1_checkpoint);
  ASSERT_EQ(f.tensors.count("train.hyperparameters"), 1u);
  ASSERT_EQ(f.meta.count("qkv.train.format"), 0u);
  const trained_model m = load_trained_model(format1_checkpoint);
  EXPECT_EQ(m.model->config().heads, 2);
  EXPECT_EQ(m.model->config().embed, 8);
  std::string corpus;
  for (const uint8_t b : m.vocab.symbols()) corpus += static_cast<char>(b);
  while (corpus.size() < 200) corpus += corpus;
  const std::unique_ptr<trainer> t = trainer::resume(format1_checkpoint, corpus);
  EXPECT_EQ(t->step(), 3);
  EXPECT_EQ(t->config().seed, 7u);
  EXPECT_EQ(t->config().batch, 2);
  EXPECT_EQ(t->config().steps, 3);
  EXPECT_FLOAT_EQ(t->config().model.dropout, 0.1f);
  EXPECT_EQ(t->train_curve().size(), 3u);
  EXPECT_EQ(t->eval_curve().size(), 2u);
  // Without attention-dropout (the 12th entry, added later), the first format means 0.
  checkpoint_file eleven = f;
  tensor& h = eleven.tensors.at("train.hyperparameters");
  h = tensor({11}, std::vector<float>(h.values().begin(), h.values().begin() + 11));
  const std::string path = (dir / "eleven.safetensors").string();
  io::write_safetensors(path, eleven.tensors, eleven.meta);
  EXPECT_EQ(trainer::resume(path, corpus)->config().model.attention_dropout, 0.0f);
}

TEST_F(CheckpointFile, FirstFormatBadValuesAreRefused) {
  checkpoint_file f = read(format1_checkpoint);
  f.tensors.at("train.hyperparameters") = tensor({0});  // was a segfault (h[0])
  expect_refused(f, {"train.hyperparameters must hold 11 or 12 values"});
  f = read(format1_checkpoint);
  f.tensors.at("train.hyperparameters")[2] = -1.0f;  // batch
  expect_refused(f, {"train.batch: must be >= 1, got -1"});
  f = read(format1_checkpoint);
  f.tensors.at("train.hyperparameters")[2] = 2.5f;
  expect_refused(f, {"train.batch: expected an integer", "2.5"});
  f = read(format1_checkpoint);
  f.tensors.at("train.step") = tensor({4}, 65535.0f);  // 2^64 - 1
  expect_refused(f, {"train.step: must be at most train.steps = 3, got 18446744073709551615"});
  f = read(format1_checkpoint);
  f.tensors.erase("train.hyperparameters");
  expect_refused(f, {"not a qkv train checkpoint"});
}

TEST_F(CheckpointFile, EveryBadHyperparameterIsRefusedNamingIt) {
  expect_entry_refused("train.batch", "-1", {"train.batch: must be >= 1, got -1"});
  // The memory a training step needs is a rule of training, not of generation.
  expect_entry_refused("train.batch", "1000000000", {"train.batch:", "GiB", "memory"}, true);
  EXPECT_NO_THROW(load_trained_model((dir / "bad.safetensors").string()));
  expect_entry_refused("train.held-out", "-5", {"train.held-out: must be in (0, 1), got -5"});
  expect_entry_refused("train.eval-batches", "0", {"train.eval-batches: must be >= 1, got 0"});
  expect_entry_refused("train.lr", "nan", {"train.lr: must be finite and > 0, got nan"});
  expect_entry_refused("train.lr", "-1", {"train.lr: must be finite and > 0"});
  expect_entry_refused("train.min-lr", "inf", {"train.min-lr: must be finite and >= 0"});
  expect_entry_refused("train.clip", "0", {"train.clip: must be finite and > 0"});
  expect_entry_refused("train.weight-decay", "-0.1", {"train.weight-decay: must be finite"});
  expect_entry_refused("train.warmup", "-5", {"train.warmup: must be in [0, 2^24], got -5"});
  expect_entry_refused("train.steps", "0", {"train.steps: must be >= 1, got 0"});
  expect_entry_refused("train.dropout", "1", {"train.dropout: must be in [0, 1), got 1"});
  expect_entry_refused("train.attention-dropout", "-0.5", {"train.attention-dropout"});
  expect_entry_refused("train.heads", "0", {"train.heads: must be >= 1, got 0"});
  expect_entry_refused("train.heads", "3", {"H = 3 must divide embed_dim E = 16"});
  expect_entry_refused("train.heads", "2x", {"train.heads: expected an integer", "'2x'"});
  expect_entry_refused("train.step", "18446744073709551615",
                       {"train.step: must be at most train.steps = 8"});
  expect_entry_refused("train.step", "-1", {"train.step: expected an integer"});
  expect_entry_refused("train.seed", "", {"train.seed: expected an integer"});
  expect_entry_refused("qkv.train.format", "3", {"qkv.train.format is '3'"});
  checkpoint_file f = read(good);
  f.meta.erase("train.clip");
  expect_refused(f, {"missing metadata entry 'train.clip'"});
}

TEST_F(CheckpointFile, BadCurvesAndVocabularyAreRefused) {
  checkpoint_file f = read(good);
  f.tensors.at("train.loss_curve") = tensor({5}, 1.0f);  // an odd-length curve
  expect_refused(f, {"train.loss_curve must be [n,2] rows of (step, loss), got shape [5]"});
  f = read(good);
  f.tensors.at("train.loss_curve")[4] = 2.0f;  // row 2's step repeats row 1's
  expect_refused(f, {"train.loss_curve row 2: step 2"});
  f = read(good);
  f.tensors.at("train.eval_curve")[0] = 9.0f;  // beyond the checkpoint's step
  expect_refused(f, {"train.eval_curve row 0: step 9"});
  f = read(good);
  f.tensors.at("train.vocabulary")[1] = 300.0f;
  expect_refused(f, {"train.vocabulary must hold increasing byte values"});
  f = read(good);
  f.tensors.at("train.vocabulary") = tensor({3}, std::vector<float>{32, 33, 34});
  expect_refused(f, {"the vocabulary (3 bytes) and model.wte.weight"});
}

}  // namespace
}  // namespace qkv::train
