// MPI for the length of one command. The library never initialises MPI; the tool, being the
// application, does, and only for its MPI modes (sdpa --ring, bench --ring).
#pragma once

#ifdef QKV_WITH_MPI
#include <mpi.h>

namespace qkv::cli {

class mpi_session {
 public:
  mpi_session() {
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised) MPI_Init(nullptr, nullptr), owned_ = true;
  }
  ~mpi_session() {
    if (owned_) MPI_Finalize();
  }
  mpi_session(const mpi_session&) = delete;
  mpi_session& operator=(const mpi_session&) = delete;

 private:
  bool owned_ = false;
};

}  // namespace qkv::cli
#endif
