// Minimal, bounds-checked FlexBuffers reader (maps, scalars, strings, vectors) for the
// custom options of our custom ops. Written for keras-csp; throws FlexError on malformed
// input instead of reading out of bounds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace keras_csp::runtime::flex {

struct FlexError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum Type : int {
  kNull = 0, kInt = 1, kUInt = 2, kFloat = 3, kKey = 4, kString = 5, kIndirectInt = 6,
  kIndirectUInt = 7, kIndirectFloat = 8, kMap = 9, kVector = 10, kVectorInt = 11,
  kVectorUInt = 12, kVectorFloat = 13, kVectorKey = 14, kVectorInt2 = 16, kVectorUInt2 = 17,
  kVectorFloat2 = 18, kVectorInt3 = 19, kVectorUInt3 = 20, kVectorFloat3 = 21,
  kVectorInt4 = 22, kVectorUInt4 = 23, kVectorFloat4 = 24, kBlob = 25, kBool = 26,
  kVectorBool = 36,
};

class Ref {
 public:
  Ref() = default;
  Ref(const uint8_t* buf, size_t size, size_t pos, int parent_width, int byte_width, Type type)
      : buf_(buf), size_(size), pos_(pos), parent_width_(parent_width),
        byte_width_(byte_width), type_(type) {}

  Type type() const { return type_; }
  bool IsNull() const { return type_ == kNull; }
  bool IsMap() const { return type_ == kMap; }
  bool IsNumeric() const;
  bool IsVectorLike() const;

  int64_t AsInt() const;      // ints, uints, bools, floats with integral value
  double AsDouble() const;    // any numeric
  std::string AsString() const;  // string or key
  size_t Size() const;        // vectors, maps, strings
  Ref At(size_t i) const;     // vectors and maps (by position)
  std::vector<int64_t> AsIntVector() const;
  std::vector<double> AsDoubleVector() const;

  // Map access. Get() returns a null Ref when the key is absent.
  Ref Get(const std::string& key) const;
  bool Has(const std::string& key) const { return !Get(key).IsNull(); }
  std::vector<std::string> Keys() const;

 private:
  uint64_t ReadU(size_t pos, int width) const;
  int64_t ReadI(size_t pos, int width) const;
  double ReadF(size_t pos, int width) const;
  size_t Indirect() const;  // target position of an offset-typed value
  void Check(size_t pos, size_t len) const;

  const uint8_t* buf_ = nullptr;
  size_t size_ = 0;
  size_t pos_ = 0;
  int parent_width_ = 1;
  int byte_width_ = 1;
  Type type_ = kNull;
};

// Root of a FlexBuffer. Throws FlexError when the buffer is too small / malformed.
Ref GetRoot(const uint8_t* buf, size_t size);

}  // namespace keras_csp::runtime::flex
