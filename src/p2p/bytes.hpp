// Big-endian byte writer and bounds-checked reader for the p2p wire encodings (wire.cpp,
// identity_record.cpp). The reader never reads past its input: every take fails cleanly and
// leaves ok() false, so a decoder checks once at the end.
//
// Thread-safety: value types used by one thread.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace mercato::p2p {

class ByteWriter {
 public:
  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u16(uint16_t v) {
    u8(static_cast<uint8_t>(v >> 8));
    u8(static_cast<uint8_t>(v));
  }
  void u64(uint64_t v) {
    for (int i = 7; i >= 0; --i) u8(static_cast<uint8_t>(v >> (8 * i)));
  }
  template <size_t N>
  void fixed(const std::array<uint8_t, N>& a) {
    out_.append(reinterpret_cast<const char*>(a.data()), N);
  }
  void raw(std::string_view s) { out_.append(s); }
  // A string of at most 255 bytes, prefixed with its length. REQUIRES: s.size() <= 255.
  void str8(std::string_view s) {
    u8(static_cast<uint8_t>(s.size()));
    raw(s);
  }
  // At most 65535 bytes, prefixed with a u16 length. REQUIRES: s.size() <= 65535.
  void str16(std::string_view s) {
    u16(static_cast<uint16_t>(s.size()));
    raw(s);
  }
  std::string& bytes() { return out_; }

 private:
  std::string out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool atEnd() const { return pos_ == in_.size(); }
  size_t pos() const { return pos_; }
  size_t remaining() const { return in_.size() - pos_; }

  uint8_t u8() {
    if (!need(1)) return 0;
    return static_cast<uint8_t>(in_[pos_++]);
  }
  uint16_t u16() {
    uint16_t hi = u8();
    return static_cast<uint16_t>((hi << 8) | u8());
  }
  uint64_t u64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | u8();
    return v;
  }
  template <size_t N>
  std::array<uint8_t, N> fixed() {
    std::array<uint8_t, N> a{};
    if (!need(N)) return a;
    for (size_t i = 0; i < N; ++i) a[i] = static_cast<uint8_t>(in_[pos_ + i]);
    pos_ += N;
    return a;
  }
  std::string_view raw(size_t n) {
    if (!need(n)) return {};
    std::string_view s = in_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::string_view str8() { return raw(u8()); }
  std::string_view str16() { return raw(u16()); }
  void fail() { ok_ = false; }

 private:
  bool need(size_t n) {
    if (!ok_ || in_.size() - pos_ < n) {
      ok_ = false;
      return false;
    }
    return true;
  }
  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace mercato::p2p
