// A distributed program that fails on purpose, for check_fault.sh:
//   fault throw         the last rank throws (as a bad data file on one host would) while the
//                       others wait in the gradient collective: the job must end with its message
//   fault hang          the last rank stops answering: the others' collective timeout (2 s) must
//                       end the job
//   fault no_launcher   started without mpirun: must say how to start it
#include <minicnn/distributed.hpp>
#include <minicnn/layers/linear.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

int main(int argc, char** argv) {
  namespace distributed = minicnn::distributed;
  const std::string mode = argc > 1 ? argv[1] : "throw";
  try {
    distributed::Environment environment(argc, argv);
    return distributed::run_or_abort([&] {
      minicnn::Generator generator(1);
      minicnn::Linear<float> model(5, 3, true, generator);
      distributed::GradientAveragerOptions options;
      options.collective_timeout = std::chrono::seconds(2);
      distributed::GradientAverager<float> averager(model.parameters(), 1, options);
      const bool last = environment.rank() == environment.world_size() - 1;
      if (last && mode == "throw")
        throw minicnn::error("images 'train-images-idx3-ubyte.gz': unexpected end of file at byte 1234");
      if (last && mode == "hang") std::this_thread::sleep_for(std::chrono::hours(1));
      averager.keep(0, 1, 1);
      averager.average();
      return 0;
    });
  } catch (const std::exception& failure) {
    // Reached only before MPI starts (the launcher check).
    std::fprintf(stderr, "minicnn: %s\n", failure.what());
    return 2;
  }
}
