// The `qkv sdpa` command lines the CLI tests share: inputs and outputs as files in a temp_dir.
#pragma once

#include <string>
#include <vector>

#include "support/cli.hpp"

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

}  // namespace qkv::testing
