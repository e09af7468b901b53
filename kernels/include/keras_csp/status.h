// Status returned by every keras_csp kernel entry point. Kernels never abort and never throw.
#pragma once

#include <string>
#include <utility>

namespace keras_csp {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // shape / parameter inconsistent
  kNullPointer,      // required pointer is null
  kMisaligned,       // pointer not aligned for its element type
  kOutOfRange,       // an access would fall outside the declared buffer
  kUnsupported,      // variant / ISA not available on this CPU or build
  kOutOfMemory,
};

class Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status Error(StatusCode code, std::string message) { return Status(code, std::move(message)); }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

const char* StatusCodeName(StatusCode code);

}  // namespace keras_csp

#define KCSP_RETURN_IF_ERROR(expr)         \
  do {                                     \
    ::keras_csp::Status _kcsp_s = (expr);  \
    if (!_kcsp_s.ok()) return _kcsp_s;     \
  } while (0)
