// qkv: the command-line tool. Exit codes: 0 success, 2 bad input (a message on stderr naming the
// argument and the shapes), 1 internal failure.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

#include "commands.hpp"
#include "mpi_session.hpp"
#include "qkv/error.hpp"
#include "qkv/threads.hpp"

namespace {

// Only --ring runs as one rank of many. Any other command started P times by mpirun would run P
// whole copies, each writing the same output files: refused before anything runs.
void refuse_mpi_launch_without_ring(int argc, char** argv) {
  const long size = qkv::cli::mpi_launch_size();
  if (size <= 1) return;
  for (int i = 1; i < argc; ++i)
    if (std::string_view(argv[i]) == "--ring") return;
  if (qkv::cli::mpi_launch_rank() != 0) std::exit(0);  // rank 0 reports for the job
  std::fprintf(stderr,
               "qkv: error: started by an MPI launcher as one of %ld processes, without --ring: "
               "each would run the whole command and write the same files. Use `qkv sdpa "
               "--ring` or `qkv bench --ring` under mpirun, or run qkv without mpirun.\n",
               size);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  refuse_mpi_launch_without_ring(argc, argv);
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
    // A malformed QKV_NUM_THREADS is refused by every command, whether or not a kernel reads it.
    if (const char* env = std::getenv("QKV_NUM_THREADS"); env && *env) qkv::resolve_thread_count(0);
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  } catch (const qkv::cli::already_reported& e) {
    return e.code;
  } catch (const qkv::error& e) {
    // Under mpirun every rank meets the same bad argument: rank 0 says it, and its exit code is
    // the job's; the others leave quietly, so that the message comes once.
    if (qkv::cli::mpi_launch_rank() != 0) return 0;
    std::fprintf(stderr, "qkv: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qkv: internal error: %s\n", e.what());
    return 1;
  }
  return 0;
}
