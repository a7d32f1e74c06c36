// MPI for the length of one command. The library never initialises MPI; the tool, being the
// application, does, and only for its MPI modes (sdpa --ring, bench --ring). Also what an MPI
// launcher (mpirun, mpiexec) tells a process through its environment, known before any MPI call.
#pragma once

#include <cstdlib>

#ifdef QKV_WITH_MPI
#include <mpi.h>
#endif

namespace qkv::cli {

// The number of processes the launcher started this one among (Open MPI; MPICH and Intel MPI
// through PMI), 1 when not so launched, and this one's rank among them.
inline long mpi_launch_size() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
    if (const char* v = std::getenv(name)) return std::strtol(v, nullptr, 10);
  return 1;
}
inline long mpi_launch_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMI_RANK"})
    if (const char* v = std::getenv(name)) return std::strtol(v, nullptr, 10);
  return 0;
}

#ifdef QKV_WITH_MPI
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
#endif

}  // namespace qkv::cli
