#pragma once
// Atomic file writes: readers of `path` see either its old contents or the complete new ones,
// never a half-written file, even when the process is killed or the machine loses power in
// the middle of a write.
//
//   io::AtomicFile file("runs/model.safetensors");   // creates runs/.model.safetensors.tmp-<pid>-<n>
//   file.write(header.data(), header.size());
//   file.write(data, bytes);
//   file.commit();                                    // fsync, rename over the target, fsync the directory
//
// A file that is never committed (an exception on the way) is removed by the destructor, and
// the old contents of `path` stay untouched. The temporary file lives in the target's own
// directory because rename() is atomic only within one file system. POSIX only.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "minicnn/error.hpp"

namespace minicnn::io {

class AtomicFile {
 public:
  // Creates the temporary file next to `path`; throws minicnn::error naming both when the
  // directory is missing or not writable.
  explicit AtomicFile(std::string path) : path_(std::move(path)) {
    if (path_.empty()) throw error("AtomicFile: empty file name");
    const std::size_t slash = path_.find_last_of('/');
    directory_ = slash == std::string::npos ? "." : (slash == 0 ? "/" : path_.substr(0, slash));
    const std::string base = slash == std::string::npos ? path_ : path_.substr(slash + 1);
    if (base.empty()) throw error(path_ + ": expected a file name, found a directory path");
    // O_EXCL makes each attempt claim a fresh name; a clash (a leftover from a crashed run
    // with the same pid) just moves on to the next counter value.
    for (int attempt = 0; attempt < 100; ++attempt) {
      const std::string candidate = (slash == std::string::npos ? std::string() : path_.substr(0, slash + 1)) + "." +
                                    base + ".tmp-" + std::to_string(::getpid()) + "-" +
                                    std::to_string(next_counter()++);
      descriptor_ = ::open(candidate.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (descriptor_ >= 0) {
        temporary_path_ = candidate;
        return;
      }
      if (errno != EEXIST) throw error(path_ + ": cannot create the temporary file " + candidate + ": " + last_error());
    }
    throw error(path_ + ": cannot find a free temporary file name in " + directory_);
  }

  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  ~AtomicFile() {
    if (descriptor_ >= 0) ::close(descriptor_);
    if (!committed_ && !temporary_path_.empty()) ::unlink(temporary_path_.c_str());
  }

  const std::string& path() const { return path_; }
  const std::string& temporary_path() const { return temporary_path_; }

  // Appends bytes; short writes and interrupted calls are retried, real failures (disk full)
  // throw minicnn::error naming the target file.
  void write(const void* data, std::size_t size) {
    require_open("write");
    const char* bytes = static_cast<const char*>(data);
    while (size > 0) {
      const ::ssize_t written = ::write(descriptor_, bytes, size);
      if (written < 0) {
        if (errno == EINTR) continue;
        throw error(path_ + ": write failed: " + last_error());
      }
      bytes += written;
      size -= static_cast<std::size_t>(written);
    }
  }
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }

  // Makes the new contents durable and visible under `path`, replacing any old file.
  void commit() {
    require_open("commit");
    if (::fsync(descriptor_) != 0) throw error(path_ + ": fsync failed: " + last_error());
    const int descriptor = descriptor_;
    descriptor_ = -1;
    if (::close(descriptor) != 0) throw error(path_ + ": close failed: " + last_error());
    if (::rename(temporary_path_.c_str(), path_.c_str()) != 0)
      throw error(path_ + ": cannot rename " + temporary_path_ + " over it: " + last_error());
    committed_ = true;
    // The rename lives in the directory: sync it too, or a crash may forget the new name.
    // Some file systems cannot fsync a directory (EINVAL); the data itself is safe there.
    const int directory = ::open(directory_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (directory >= 0) {
      const int status = ::fsync(directory);
      const int fsync_error = errno;
      ::close(directory);
      if (status != 0 && fsync_error != EINVAL && fsync_error != EROFS)
        throw error(path_ + ": fsync of the directory " + directory_ +
                    " failed: " + std::generic_category().message(fsync_error));
    }
  }

 private:
  static std::atomic<unsigned long>& next_counter() {
    static std::atomic<unsigned long> counter{0};
    return counter;
  }
  static std::string last_error() { return std::generic_category().message(errno); }
  void require_open(const char* operation) const {
    if (descriptor_ < 0) throw error(path_ + ": AtomicFile::" + operation + " after commit");
  }

  std::string path_, directory_, temporary_path_;
  int descriptor_ = -1;
  bool committed_ = false;
};

// The whole file in one call.
inline void write_file_atomically(const std::string& path, const void* data, std::size_t size) {
  AtomicFile file(path);
  file.write(data, size);
  file.commit();
}
inline void write_file_atomically(const std::string& path, std::string_view bytes) {
  write_file_atomically(path, bytes.data(), bytes.size());
}

}  // namespace minicnn::io
