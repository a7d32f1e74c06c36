// qkv: the command-line tool. Exit codes (DESIGN section 5): 0 success, 2 bad input (a message
// on stderr naming the argument and the shapes), 1 internal failure.
#include <cstdio>
#include <exception>

#include "commands.hpp"
#include "qkv/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{"qkv: Transformer attention, from the math to the metal"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "qkv 0.1.0");
  qkv::cli::add_sdpa_command(app);
  qkv::cli::add_mha_command(app);
  qkv::cli::add_layer_command(app);
  qkv::cli::add_explain_command(app);
  qkv::cli::add_bench_command(app);
  qkv::cli::add_train_command(app);
  qkv::cli::add_generate_command(app);
  qkv::cli::add_tokenize_command(app);
  qkv::cli::add_logits_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  } catch (const qkv::cli::already_reported& e) {
    return e.code;
  } catch (const qkv::error& e) {
    std::fprintf(stderr, "qkv: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qkv: internal error: %s\n", e.what());
    return 1;
  }
  return 0;
}
