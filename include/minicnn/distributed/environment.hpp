#pragma once
// The MPI environment of a data-parallel run: start and end MPI (RAII), this process's rank and
// the number of processes, how a failure on one rank ends the whole job, and the check that a
// distributed run was started by a launcher (mpirun) at all.
//
// Fault contract. MPI has no way to tell the other ranks that one of them threw: they would wait
// in their next collective forever. So a rank that fails prints its message (prefixed with its
// rank) and calls MPI_Abort, which makes mpirun kill every process and exit non-zero within
// seconds. run_or_abort() does that for any exception escaping the training code. A rank that
// hangs without throwing is caught by the collective timeout (CollectiveWatchdog below).
#include <mpi.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <thread>

#include "minicnn/error.hpp"

namespace minicnn::distributed {

// How a process that was not started by a launcher is treated.
enum class Launch {
  require_launcher,  // throw minicnn::error saying how to start the program with mpirun
  allow_singleton,   // run as a world of one process (MPI's singleton init)
};

// Whether a launcher started this process: OpenMPI's mpirun sets OMPI_COMM_WORLD_SIZE, MPICH's
// Hydra and Slurm's PMI set PMI_SIZE, PMIx launchers set PMIX_RANK.
inline bool started_by_launcher() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMI_SIZE") != nullptr ||
         std::getenv("PMIX_RANK") != nullptr;
}

// Throws minicnn::error naming the MPI call and MPI's own text for a failed MPI call. MPI's
// default handler (MPI_ERRORS_ARE_FATAL) aborts before this sees a failure; Environment
// switches MPI_COMM_WORLD to MPI_ERRORS_RETURN so the message names what failed.
inline void check_mpi(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw error(std::string(call) + " failed: " + std::string(text, static_cast<std::size_t>(length)));
}

inline bool mpi_initialized() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized != 0 && finalized == 0;
}

inline int rank() {
  if (!mpi_initialized()) throw error("distributed::rank: MPI is not initialised (create a distributed::Environment)");
  int value = 0;
  check_mpi(MPI_Comm_rank(MPI_COMM_WORLD, &value), "MPI_Comm_rank");
  return value;
}

inline int world_size() {
  if (!mpi_initialized())
    throw error("distributed::world_size: MPI is not initialised (create a distributed::Environment)");
  int value = 0;
  check_mpi(MPI_Comm_size(MPI_COMM_WORLD, &value), "MPI_Comm_size");
  return value;
}

// Prints "minicnn: rank R of P: message" to stderr and ends the whole job with exit status
// `code` (MPI_Abort kills every rank). Never returns.
[[noreturn]] inline void abort_job(const std::string& message, int code = 1) {
  if (mpi_initialized()) {
    std::fprintf(stderr, "minicnn: rank %d of %d: %s\n", rank(), world_size(), message.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
  } else {
    std::fprintf(stderr, "minicnn: %s\n", message.c_str());
    std::fflush(stderr);
  }
  std::_Exit(code);
}

// Runs body() and returns its result (an int exit status); an exception from it, on any rank,
// ends the whole job through abort_job() with the exception's message.
template <typename Body>
int run_or_abort(Body&& body) {
  try {
    return body();
  } catch (const std::exception& failure) {
    abort_job(failure.what());
  } catch (...) {
    abort_job("an exception that is not a std::exception");
  }
}

// MPI_Init on construction, MPI_Finalize on destruction; one per process.
class Environment {
 public:
  Environment(int& argc, char**& argv, Launch launch = Launch::require_launcher) {
    if (launch == Launch::require_launcher && !started_by_launcher())
      throw error(
          "distributed run: this process was not started by an MPI launcher (no OMPI_COMM_WORLD_SIZE, PMI_SIZE or "
          "PMIX_RANK in the environment); start it as `mpirun -np 2 " +
          std::string(argc > 0 ? argv[0] : "program") +
          " ...` (as root add --allow-run-as-root; on several hosts add --hostfile hosts)");
    int already = 0;
    MPI_Initialized(&already);
    if (already) throw error("distributed::Environment: MPI is initialised already (one Environment per process)");
    // FUNNELED: only the main thread calls MPI; OpenMP threads run the kernels in between.
    int provided = 0;
    check_mpi(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_RETURN);
  }
  ~Environment() {
    if (mpi_initialized()) MPI_Finalize();
  }
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;

  int rank() const { return distributed::rank(); }
  int world_size() const { return distributed::world_size(); }
};

// Ends the job when a collective has waited longer than `timeout` (a rank stuck in a loop, or a
// host gone without its process exiting, would otherwise make every other rank wait forever).
// arm() before a collective, disarm() after; a zero timeout switches it off. The watchdog thread
// makes no MPI call: on expiry it prints the message and exits the process with status 1, and
// mpirun then ends the other ranks (a process that exits without MPI_Finalize ends the job).
class CollectiveWatchdog {
 public:
  explicit CollectiveWatchdog(std::chrono::seconds timeout) : timeout_(timeout) {
    if (timeout_.count() > 0) thread_ = std::thread([this] { watch(); });
  }
  ~CollectiveWatchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  CollectiveWatchdog(const CollectiveWatchdog&) = delete;
  CollectiveWatchdog& operator=(const CollectiveWatchdog&) = delete;

  void arm(const char* collective) {
    if (timeout_.count() <= 0) return;
    std::lock_guard<std::mutex> lock(mutex_);
    collective_ = collective;
    deadline_ = std::chrono::steady_clock::now() + timeout_;
    armed_ = true;
    changed_.notify_all();
  }
  void disarm() {
    if (timeout_.count() <= 0) return;
    std::lock_guard<std::mutex> lock(mutex_);
    armed_ = false;
  }

 private:
  void watch() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
      if (!armed_) {
        changed_.wait(lock);
        continue;
      }
      const auto deadline = deadline_;
      if (changed_.wait_until(lock, deadline) == std::cv_status::timeout && armed_ && deadline_ == deadline) {
        std::fprintf(stderr,
                     "minicnn: rank %d: %s has waited %lld s for the other ranks (one is stuck or gone); ending the "
                     "job\n",
                     rank_for_message(), collective_, static_cast<long long>(timeout_.count()));
        std::fflush(stderr);
        std::_Exit(1);
      }
    }
  }
  static int rank_for_message() {
    // Read from the launcher's environment: the watchdog thread makes no MPI call.
    const char* value = std::getenv("OMPI_COMM_WORLD_RANK");
    if (value == nullptr) value = std::getenv("PMI_RANK");
    return value ? std::atoi(value) : 0;
  }

  std::chrono::seconds timeout_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::chrono::steady_clock::time_point deadline_{};
  const char* collective_ = "";
  bool armed_ = false;
  bool stopping_ = false;
};

}  // namespace minicnn::distributed
