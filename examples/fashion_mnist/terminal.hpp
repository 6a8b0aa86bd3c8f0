#pragma once
// Terminal output of the training loop: a live progress bar when stdout is a terminal, a few
// plain lines per epoch otherwise (logs, pipes, CI); and the Ctrl-C flag.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <string>

namespace fashion_mnist {

// --- Ctrl-C ---------------------------------------------------------------------------------
// The handler only sets a flag; the training loop checks it between batches, saves a
// checkpoint and exits. The handler also restores the default action, so a second Ctrl-C
// ends the program at once.
inline volatile std::sig_atomic_t& interrupt_flag() {
  static volatile std::sig_atomic_t flag = 0;
  return flag;
}
extern "C" inline void fashion_mnist_on_interrupt(int signal_number) {
  interrupt_flag() = 1;
  std::signal(signal_number, SIG_DFL);
}
inline void install_interrupt_handler() {
  std::signal(SIGINT, fashion_mnist_on_interrupt);
  std::signal(SIGTERM, fashion_mnist_on_interrupt);
}
inline bool interrupted() { return interrupt_flag() != 0; }

// --- formatting -----------------------------------------------------------------------------
inline std::string format(const char* pattern, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, pattern, value);
  return buffer;
}

// "1:05" or "1:02:03".
inline std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "?";
  const auto total = static_cast<std::int64_t>(seconds + 0.5);
  char buffer[32];
  if (total >= 3600)
    std::snprintf(buffer, sizeof buffer, "%lld:%02lld:%02lld", static_cast<long long>(total / 3600),
                  static_cast<long long>(total / 60 % 60), static_cast<long long>(total % 60));
  else
    std::snprintf(buffer, sizeof buffer, "%lld:%02lld", static_cast<long long>(total / 60), static_cast<long long>(total % 60));
  return buffer;
}

inline bool stdout_is_terminal() { return ::isatty(STDOUT_FILENO) == 1; }

using Clock = std::chrono::steady_clock;
inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// --- progress -------------------------------------------------------------------------------
// One epoch's progress: batches done, images/s, running loss, ETA. On a terminal the bar is
// redrawn in place at most 10 times a second; otherwise a line is printed at every quarter.
class Progress {
 public:
  Progress(bool terminal, std::int64_t epoch, std::int64_t epochs, std::int64_t batches, std::int64_t first_batch)
      : terminal_(terminal), epoch_(epoch), epochs_(epochs), batches_(batches), first_batch_(first_batch),
        start_(Clock::now()), last_draw_(start_) {
    next_quarter_ = (first_batch * 4 / std::max<std::int64_t>(batches, 1) + 1);
  }

  // images_done_this_run: by every process; communication_ms: per step, shown when >= 0 (--distributed).
  void update(std::int64_t batches_done, std::int64_t images_done_this_run, double running_loss,
              double communication_ms = -1.0) {
    const double elapsed = seconds_since(start_);
    const double images_per_second = elapsed > 0 ? images_done_this_run / elapsed : 0.0;
    const std::int64_t done_this_run = batches_done - first_batch_;
    const double eta = done_this_run > 0 ? elapsed / done_this_run * (batches_ - batches_done) : -1.0;
    if (terminal_) {
      if (batches_done < batches_ && std::chrono::duration<double>(Clock::now() - last_draw_).count() < 0.1) return;
      last_draw_ = Clock::now();
      const int width = 30;
      const int filled = static_cast<int>(width * batches_done / std::max<std::int64_t>(batches_, 1));
      std::string bar(static_cast<std::size_t>(filled), '#');
      bar.append(static_cast<std::size_t>(width - filled), '.');
      std::printf("\r\033[Kepoch %lld/%lld [%s] %lld/%lld | %.0f img/s%s | loss %.4f | ETA %s", static_cast<long long>(epoch_),
                  static_cast<long long>(epochs_), bar.c_str(), static_cast<long long>(batches_done),
                  static_cast<long long>(batches_), images_per_second, communication(communication_ms).c_str(),
                  running_loss, format_duration(eta).c_str());
      std::fflush(stdout);
      drawn_ = true;
      return;
    }
    // Plain lines at 25%, 50% and 75% of the epoch.
    if (next_quarter_ <= 3 && batches_done * 4 >= next_quarter_ * batches_) {
      std::printf("  epoch %lld/%lld: %lld/%lld batches, %.0f img/s%s, loss %.4f, ETA %s\n", static_cast<long long>(epoch_),
                  static_cast<long long>(epochs_), static_cast<long long>(batches_done), static_cast<long long>(batches_),
                  images_per_second, communication(communication_ms).c_str(), running_loss, format_duration(eta).c_str());
      std::fflush(stdout);
      while (next_quarter_ <= 3 && batches_done * 4 >= next_quarter_ * batches_) ++next_quarter_;
    }
  }

  // Clears the bar so the next line starts clean.
  void finish() {
    if (terminal_ && drawn_) {
      std::printf("\r\033[K");
      std::fflush(stdout);
    }
    drawn_ = false;
  }

 private:
  static std::string communication(double milliseconds) {
    return milliseconds < 0 ? std::string() : " (communication " + format("%.1f", milliseconds) + " ms/step)";
  }

  bool terminal_;
  std::int64_t epoch_, epochs_, batches_, first_batch_;
  Clock::time_point start_, last_draw_;
  std::int64_t next_quarter_ = 1;
  bool drawn_ = false;
};

}  // namespace fashion_mnist
