#pragma once
// The one exception type of the library. Every failure a caller can cause (bad shapes, bad
// files, bad arguments) is reported as minicnn::error with a message that names the object,
// the field, what was expected and what was found.
#include <stdexcept>
#include <string>

namespace minicnn {

class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace minicnn
