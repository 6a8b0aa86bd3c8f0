#pragma once
// minicnn::distributed: data-parallel training over MPI (docs/distributed.md).
// Needs an MPI implementation: configure with -DMINICNN_WITH_MPI=ON and link MPI::MPI_CXX (the
// minicnn target does it then). minicnn.hpp does not include this header, so builds without MPI
// are unchanged.
#include "minicnn/distributed/broadcast.hpp"
#include "minicnn/distributed/environment.hpp"
#include "minicnn/distributed/gradient_averager.hpp"
#include "minicnn/distributed/random_streams.hpp"
#include "minicnn/distributed/sampler.hpp"
