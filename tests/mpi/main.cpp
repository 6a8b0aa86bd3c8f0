// The MPI suite's main: MPI around Catch2. Every rank runs every test case; the collectives
// inside keep them in step. The exit status is non-zero when any rank failed. Started without
// mpirun it runs as a world of one process.
#define CATCH_CONFIG_RUNNER
#include <mpi.h>
#include <catch2/catch.hpp>

#include <minicnn/distributed.hpp>

int main(int argc, char** argv) {
  minicnn::distributed::Environment environment(argc, argv, minicnn::distributed::Launch::allow_singleton);
  int failures = Catch::Session().run(argc, argv);
  MPI_Allreduce(MPI_IN_PLACE, &failures, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return failures == 0 ? 0 : 1;
}
