// The `qkv sdpa` command lines the CLI tests share: inputs and outputs as files in a temp_dir.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "support/cli.hpp"
#include "support/golden.hpp"

namespace qkv::testing {

// `qkv sdpa` reading q.npy, k.npy and v.npy from `dir` and writing out.npy there.
inline std::vector<std::string> sdpa_command(const temp_dir& dir) {
  return {"sdpa",
          "--q",
          dir.file("q.npy"),
          "--k",
          dir.file("k.npy"),
          "--v",
          dir.file("v.npy"),
          "-o",
          dir.file("out.npy")};
}

// The backward's flags: dO from g.npy, dQ, dK and dV written to dq.npy, dk.npy and dv.npy.
inline std::vector<std::string> sdpa_grad_flags(const temp_dir& dir) {
  return {"--grad-out", dir.file("g.npy"),  "--dq", dir.file("dq.npy"),
          "--dk",       dir.file("dk.npy"), "--dv", dir.file("dv.npy")};
}

// A golden case run through `qkv sdpa --impl impl`.
struct golden_cli_case {
  golden_case golden;
  std::string impl;
};
inline void PrintTo(const golden_cli_case& c, std::ostream* os) {
  *os << c.golden.id << " --impl " << c.impl;
}

// Every golden case of `kinds`, once with each kernel.
inline std::vector<golden_cli_case> golden_cli_cases(std::initializer_list<const char*> kinds) {
  std::vector<golden_cli_case> cases;
  for (auto& g : load_golden(kinds))
    for (const char* impl : {"reference", "fused"}) cases.push_back({g, impl});
  return cases;
}

inline std::string golden_cli_case_name(const ::testing::TestParamInfo<golden_cli_case>& info) {
  return test_name(info.param.golden.id + "_" + info.param.impl);
}

}  // namespace qkv::testing
