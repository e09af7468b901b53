#include "flexbuffer_reader.h"

#include <cmath>
#include <cstring>

namespace keras_csp::runtime::flex {
namespace {

bool IsTypedVector(Type t) { return (t >= kVectorInt && t <= kVectorKey) || t == kVectorBool; }
bool IsFixedTypedVector(Type t) { return t >= kVectorInt2 && t <= kVectorFloat4; }

Type TypedVectorElementType(Type t) {
  if (t == kVectorBool) return kBool;
  if (IsTypedVector(t)) return static_cast<Type>(t - kVectorInt + kInt);
  return static_cast<Type>((t - kVectorInt2) % 3 + kInt);
}
size_t FixedTypedVectorSize(Type t) { return (t - kVectorInt2) / 3 + 2; }

bool IsValidWidth(int w) { return w == 1 || w == 2 || w == 4 || w == 8; }

}  // namespace

void Ref::Check(size_t pos, size_t len) const {
  if (pos > size_ || len > size_ - pos) throw FlexError("flexbuffer: read out of bounds");
}

uint64_t Ref::ReadU(size_t pos, int width) const {
  Check(pos, width);
  switch (width) {
    case 1: return buf_[pos];
    case 2: { uint16_t v; std::memcpy(&v, buf_ + pos, 2); return v; }
    case 4: { uint32_t v; std::memcpy(&v, buf_ + pos, 4); return v; }
    case 8: { uint64_t v; std::memcpy(&v, buf_ + pos, 8); return v; }
  }
  throw FlexError("flexbuffer: bad byte width");
}

int64_t Ref::ReadI(size_t pos, int width) const {
  Check(pos, width);
  switch (width) {
    case 1: return static_cast<int8_t>(buf_[pos]);
    case 2: { int16_t v; std::memcpy(&v, buf_ + pos, 2); return v; }
    case 4: { int32_t v; std::memcpy(&v, buf_ + pos, 4); return v; }
    case 8: { int64_t v; std::memcpy(&v, buf_ + pos, 8); return v; }
  }
  throw FlexError("flexbuffer: bad byte width");
}

double Ref::ReadF(size_t pos, int width) const {
  Check(pos, width);
  if (width == 4) { float v; std::memcpy(&v, buf_ + pos, 4); return v; }
  if (width == 8) { double v; std::memcpy(&v, buf_ + pos, 8); return v; }
  throw FlexError("flexbuffer: bad float width");
}

size_t Ref::Indirect() const {
  uint64_t off = ReadU(pos_, parent_width_);
  if (off > pos_) throw FlexError("flexbuffer: offset out of bounds");
  return pos_ - static_cast<size_t>(off);
}

bool Ref::IsNumeric() const {
  switch (type_) {
    case kInt: case kUInt: case kFloat: case kBool:
    case kIndirectInt: case kIndirectUInt: case kIndirectFloat: return true;
    default: return false;
  }
}

bool Ref::IsVectorLike() const {
  return type_ == kVector || IsTypedVector(type_) || IsFixedTypedVector(type_);
}

int64_t Ref::AsInt() const {
  switch (type_) {
    case kInt: return ReadI(pos_, parent_width_);
    case kUInt: case kBool: return static_cast<int64_t>(ReadU(pos_, parent_width_));
    case kIndirectInt: return ReadI(Indirect(), byte_width_);
    case kIndirectUInt: return static_cast<int64_t>(ReadU(Indirect(), byte_width_));
    case kFloat: case kIndirectFloat: {
      double d = AsDouble();
      if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9.0e18)
        throw FlexError("flexbuffer: expected an integer, got a non-integral float");
      return static_cast<int64_t>(d);
    }
    default: throw FlexError("flexbuffer: expected an integer");
  }
}

double Ref::AsDouble() const {
  switch (type_) {
    case kFloat: return ReadF(pos_, parent_width_);
    case kIndirectFloat: return ReadF(Indirect(), byte_width_);
    case kInt: case kUInt: case kBool: case kIndirectInt: case kIndirectUInt:
      return static_cast<double>(AsInt());
    default: throw FlexError("flexbuffer: expected a number");
  }
}

std::string Ref::AsString() const {
  if (type_ == kString) {
    size_t t = Indirect();
    if (t < static_cast<size_t>(byte_width_)) throw FlexError("flexbuffer: bad string");
    uint64_t n = ReadU(t - byte_width_, byte_width_);
    Check(t, n);
    return std::string(reinterpret_cast<const char*>(buf_ + t), n);
  }
  if (type_ == kKey) {
    size_t t = Indirect();
    Check(t, 1);
    const void* end = std::memchr(buf_ + t, 0, size_ - t);
    if (!end) throw FlexError("flexbuffer: unterminated key");
    return std::string(reinterpret_cast<const char*>(buf_ + t),
                       static_cast<const uint8_t*>(end) - (buf_ + t));
  }
  throw FlexError("flexbuffer: expected a string");
}

size_t Ref::Size() const {
  if (IsFixedTypedVector(type_)) return FixedTypedVectorSize(type_);
  if (type_ == kVector || type_ == kMap || IsTypedVector(type_) || type_ == kString ||
      type_ == kBlob) {
    size_t t = Indirect();
    if (t < static_cast<size_t>(byte_width_)) throw FlexError("flexbuffer: bad vector");
    uint64_t n = ReadU(t - byte_width_, byte_width_);
    if (n > size_) throw FlexError("flexbuffer: vector size out of bounds");
    return static_cast<size_t>(n);
  }
  throw FlexError("flexbuffer: expected a vector or map");
}

Ref Ref::At(size_t i) const {
  size_t n = Size();
  if (i >= n) throw FlexError("flexbuffer: index out of range");
  size_t t = Indirect();
  size_t elem = t + i * byte_width_;
  if (type_ == kVector || type_ == kMap) {
    size_t types_pos = t + n * byte_width_ + i;
    Check(types_pos, 1);
    uint8_t packed = buf_[types_pos];
    Check(elem, byte_width_);
    return Ref(buf_, size_, elem, byte_width_, 1 << (packed & 3), static_cast<Type>(packed >> 2));
  }
  if (IsTypedVector(type_) || IsFixedTypedVector(type_)) {
    Check(elem, byte_width_);
    return Ref(buf_, size_, elem, byte_width_, 1, TypedVectorElementType(type_));
  }
  throw FlexError("flexbuffer: expected a vector");
}

std::vector<int64_t> Ref::AsIntVector() const {
  if (!IsVectorLike()) throw FlexError("flexbuffer: expected a vector of integers");
  std::vector<int64_t> out(Size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = At(i).AsInt();
  return out;
}

std::vector<double> Ref::AsDoubleVector() const {
  if (!IsVectorLike()) throw FlexError("flexbuffer: expected a vector of numbers");
  std::vector<double> out(Size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = At(i).AsDouble();
  return out;
}

std::vector<std::string> Ref::Keys() const {
  if (type_ != kMap) throw FlexError("flexbuffer: expected a map");
  size_t n = Size();
  size_t t = Indirect();
  if (t < 3u * byte_width_) throw FlexError("flexbuffer: bad map");
  size_t keys_off_pos = t - 3 * byte_width_;
  int keys_width = static_cast<int>(ReadU(t - 2 * byte_width_, byte_width_));
  if (!IsValidWidth(keys_width)) throw FlexError("flexbuffer: bad map key width");
  Ref keys_vec(buf_, size_, keys_off_pos, byte_width_, keys_width, kVectorKey);
  if (keys_vec.Size() != n) throw FlexError("flexbuffer: map keys/values size mismatch");
  std::vector<std::string> keys(n);
  for (size_t i = 0; i < n; ++i) keys[i] = keys_vec.At(i).AsString();
  return keys;
}

Ref Ref::Get(const std::string& key) const {
  auto keys = Keys();
  for (size_t i = 0; i < keys.size(); ++i)
    if (keys[i] == key) return At(i);
  return Ref();
}

Ref GetRoot(const uint8_t* buf, size_t size) {
  if (buf == nullptr || size < 3) throw FlexError("flexbuffer: buffer too small");
  int byte_width = buf[size - 1];
  uint8_t packed = buf[size - 2];
  if (!IsValidWidth(byte_width) || size < 2u + byte_width)
    throw FlexError("flexbuffer: bad root");
  return Ref(buf, size, size - 2 - byte_width, byte_width, 1 << (packed & 3),
             static_cast<Type>(packed >> 2));
}

}  // namespace keras_csp::runtime::flex
