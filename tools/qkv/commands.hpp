// The subcommands of the qkv tool: each file adds one to the application.
#pragma once

#include <CLI/CLI.hpp>

namespace qkv::cli {

// Thrown by a command that has already told the user what went wrong: main exits with `code`
// and prints nothing more.
struct already_reported {
  int code;
};

void add_sdpa_command(CLI::App& app);
void add_mha_command(CLI::App& app);
void add_layer_command(CLI::App& app);
void add_explain_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);
void add_logits_command(CLI::App& app);

}  // namespace qkv::cli
