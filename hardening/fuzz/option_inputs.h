// Shared by the libFuzzer targets fuzz_custom_options.cc and fuzz_delegate.cc: from an op's
// flexbuffer custom options, the input tensors (types, layouts) that op reads, so a fuzzed option
// buffer gets consistent (or deliberately perturbed) tensors and reaches the kernels.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "custom_ops.h"
#include "flexbuffer_reader.h"

namespace kcsp_fuzz {

using namespace keras_csp;
using namespace keras_csp::runtime;

inline constexpr int64_t kMaxBytes = 1 << 16;  // largest tensor the harness allocates
inline constexpr int64_t kMaxMacs = 1 << 13;   // largest Run the harness performs

// Walks any flexbuffer value (bounded depth / element count) with the accessors that apply to
// its type (exceptions are expensive under ASan: the mismatched-accessor paths run once per
// input, at the root).
inline void Walk(const flex::Ref& r, int depth, int* budget) {
  if (depth > 8 || --*budget < 0) return;
  try {
    const flex::Type t = r.type();
    if (r.IsNumeric()) {
      (void)r.AsDouble();
      if (t != flex::kFloat && t != flex::kIndirectFloat) (void)r.AsInt();
    } else if (t == flex::kString || t == flex::kKey) {
      (void)r.AsString();
    } else if (r.IsMap()) {
      auto keys = r.Keys();
      for (size_t i = 0; i < keys.size() && i < 64; ++i) Walk(r.At(i), depth + 1, budget);
      if (!keys.empty()) (void)r.Has(keys.back());
    } else if (r.IsVectorLike()) {
      size_t n = r.Size();
      if (t != flex::kVector) (void)r.AsDoubleVector();
      for (size_t i = 0; i < n && i < 64; ++i) Walk(r.At(i), depth + 1, budget);
    } else if (t == flex::kBlob) {
      (void)r.Size();
    }
  } catch (const flex::FlexError&) {
  }
}

inline void WalkRoot(const flex::Ref& r) {
  int budget = 96;
  Walk(r, 0, &budget);
  // mismatched accessors must throw FlexError, not misbehave
  try { (void)r.AsString(); } catch (const flex::FlexError&) {}
  try { (void)r.AsIntVector(); } catch (const flex::FlexError&) {}
  try { (void)r.Get("version"); } catch (const flex::FlexError&) {}
}

inline int64_t Get(const flex::Ref& m, const char* key, int64_t dflt) {
  try {
    flex::Ref r = m.Get(key);
    return r.IsNull() ? dflt : r.AsInt();
  } catch (const flex::FlexError&) {
    return dflt;
  }
}

inline LiteRtLayout L(std::initializer_list<int64_t> dims) {
  LiteRtLayout l;
  std::memset(&l, 0, sizeof(l));
  l.rank = static_cast<unsigned>(dims.size());
  int i = 0;
  for (int64_t d : dims) l.dimensions[i++] = static_cast<int32_t>(d);
  return l;
}

// Product of non-negative factors, saturated past kMaxMacs (fuzzed options carry huge values).
inline int64_t Macs(std::initializer_list<int64_t> f) {
  int64_t m = 1;
  for (int64_t x : f) {
    if (x < 0 || __builtin_mul_overflow(m, x, &m) || m > kMaxMacs) return kMaxMacs + 1;
  }
  return m;
}

inline int64_t Elements(const LiteRtLayout& l) {
  int64_t n = 1;
  for (unsigned i = 0; i < l.rank && i < KCSP_LITERT_TENSOR_MAX_RANK; ++i) {
    if (l.dimensions[i] < 0) return -1;
    n *= l.dimensions[i];
    if (n > kMaxBytes) return -1;
  }
  return n;
}

inline size_t ElemSize(LiteRtElementType t) {
  switch (t) {
    case kLiteRtElementTypeInt8: case kLiteRtElementTypeUInt8: case kLiteRtElementTypeBool: return 1;
    case kLiteRtElementTypeInt16: case kLiteRtElementTypeFloat16: return 2;
    case kLiteRtElementTypeFloat64: case kLiteRtElementTypeInt64: return 8;
    default: return 4;
  }
}

struct Conv {
  int64_t kh, kw, sh, sw, pad, cin, cout;
};
inline Conv ReadConv(const flex::Ref& m) {
  return {Get(m, "kernel_h", 1), Get(m, "kernel_w", 1), Get(m, "stride_h", 1),
          Get(m, "stride_w", 1), Get(m, "padding", 1), Get(m, "in_channels", 1),
          Get(m, "out_channels", 1)};
}

inline void Perturb(uint8_t p, std::vector<LiteRtRankedTensorType>* t) {
  if (t->empty() || (p & 7) != 0) return;  // 7 of 8 runs use the consistent layouts
  const size_t i = (p >> 3) % t->size();
  LiteRtLayout& l = (*t)[i].layout;
  switch ((p >> 5) & 7) {
    case 0: l.rank = (p & 0x40) ? 127 : 3; break;                      // bad rank
    case 1: if (l.rank) l.dimensions[l.rank - 1] += 1; break;           // channels +1
    case 2: if (l.rank) l.dimensions[l.rank - 1] -= 1; break;           // channels -1
    case 3: if (l.rank > 1) l.dimensions[1] = 0; break;                 // empty
    case 4: (*t)[i].element_type = kLiteRtElementTypeFloat32; break;   // wrong dtype
    case 5: if (l.rank > 2) l.dimensions[2] += 2; break;                // spatial
    case 6: t->pop_back(); break;                                       // input count
    case 7: if (l.rank) l.dimensions[0] = -1; break;                    // negative dim
  }
}

inline LiteRtRankedTensorType T(LiteRtElementType e, LiteRtLayout l) {
  LiteRtRankedTensorType t;
  t.element_type = e;
  t.layout = l;
  return t;
}

// The inputs (types and layouts) that op `name` with custom options `root` reads, consistent with
// the options; `shape` picks the batch and spatial size. Empty when the options make no sense.
inline std::vector<LiteRtRankedTensorType> InputsFor(const std::string& name, const flex::Ref& root, int node,
                                                    uint8_t shape, int64_t* macs_out) {
  const int64_t n = 1 + (shape & 1);
  const int64_t h = 1 + ((shape >> 1) & 3), w = 1 + ((shape >> 3) & 3);
  const LiteRtRankedTensorType key = T(kLiteRtElementTypeInt8, L({node + 1}));
  std::vector<LiteRtRankedTensorType> in;
  int64_t macs = 0;
  *macs_out = 0;
  if (name == "CspPartialConv") {
    Conv c = ReadConv(root);
    const int64_t c_skip = Get(root, "c_skip", 1), skip_off = Get(root, "skip_offset", 0),
                  conv_off = Get(root, "conv_offset", 0);
    if (c.sh < 1 || c.sw < 1 || c.kh < 1 || c.kw < 1 || c.sh > 64 || c.sw > 64 || c.kh > 4096 || c.kw > 4096) return {};
    // conv_src spatial size; the skip part takes the conv's output size
    int64_t ch = h * c.sh, cw = w * c.sw;
    if (c.pad == 0) { ch += c.kh - c.sh; cw += c.kw - c.sw; }
    const bool same_src = (shape & 0x20) && skip_off == 0 && conv_off == c_skip;
    const int64_t cc = conv_off + c.cin + ((shape >> 6) & 1);
    LiteRtLayout cl = L({n, ch, cw, cc});
    LiteRtLayout sl = same_src ? cl : L({n, h, w, skip_off + c_skip + ((shape >> 7) & 1)});
    flex::Ref dw_map;
    try {
      dw_map = root.Get("skip_dw");
    } catch (const flex::FlexError&) {
      return {};
    }
    Conv d{};
    if (!dw_map.IsNull()) {  // a depthwise skip part: skip_src has its input size and channels
      d = ReadConv(dw_map);
      if (d.sh < 1 || d.sw < 1 || d.kh < 1 || d.kw < 1 || d.sh > 64 || d.sw > 64 || d.kh > 4096 || d.kw > 4096) return {};
      int64_t sh = h * d.sh, sw = w * d.sw;
      if (d.pad == 0) { sh += d.kh - d.sh; sw += d.kw - d.sw; }
      sl = L({n, sh, sw, skip_off + d.cin + ((shape >> 7) & 1)});
      macs += Macs({n, h, w, d.kh, d.kw, d.cout});
    }
    in = {T(kLiteRtElementTypeInt8, sl), T(kLiteRtElementTypeInt8, cl),
          T(kLiteRtElementTypeInt8, L({c.cout, c.kh, c.kw, c.cin})),
          T(kLiteRtElementTypeInt32, L({c.cout}))};
    if (!dw_map.IsNull()) {
      in.push_back(T(kLiteRtElementTypeInt8, L({1, d.kh, d.kw, d.cout})));
      in.push_back(T(kLiteRtElementTypeInt32, L({d.cout})));
      if (Elements(in[4].layout) < 0) return {};
    }
    bool add = false;
    try {
      add = !root.Get("add").IsNull();
    } catch (const flex::FlexError&) {
      return {};
    }
    if (add) in.push_back(T(kLiteRtElementTypeInt8, L({n, h, w, c.cout})));  // the residual
    in.push_back(key);
    macs += Macs({n, ch, cw, c.kh, c.kw, c.cin, c.cout});
    if (Elements(cl) < 0 || Elements(sl) < 0 || Elements(in[2].layout) < 0) return {};
  } else if (name == "KcspDepthwiseConv2D" || name == "KcspConv2D") {
    const bool dw = name == "KcspDepthwiseConv2D";
    Conv c = ReadConv(root);
    const int64_t in_off = Get(root, "in_offset", 0);
    if (c.sh < 1 || c.sw < 1 || c.kh < 1 || c.kw < 1 || c.sh > 64 || c.sw > 64 || c.kh > 4096 || c.kw > 4096) return {};
    int64_t ih = h * c.sh, iw = w * c.sw;
    if (c.pad == 0) { ih += c.kh - c.sh; iw += c.kw - c.sw; }
    const int64_t groups = dw ? 1 : std::max<int64_t>(1, Get(root, "groups", 1));  // a grouped KcspConv2D
    in = {T(kLiteRtElementTypeInt8, L({n, ih, iw, in_off + c.cin + ((shape >> 5) & 1)})),
          T(kLiteRtElementTypeInt8, dw ? L({1, c.kh, c.kw, c.cout}) : L({c.cout, c.kh, c.kw, c.cin / groups})),
          T(kLiteRtElementTypeInt32, L({c.cout})), key};
    macs = dw ? Macs({n, h, w, c.kh, c.kw, c.cout}) : Macs({n, h, w, c.kh, c.kw, c.cin, c.cout});
    if (Elements(in[0].layout) < 0 || Elements(in[1].layout) < 0) return {};
  } else if (name == "KcspInvertedResidual") {
    // x at the depthwise conv's input size; weights and bias per conv in input order
    flex::Ref maps[3];
    try {
      maps[0] = root.Get("expand");
      maps[1] = root.Get("depthwise");
      maps[2] = root.Get("project");
    } catch (const flex::FlexError&) {
      return {};
    }
    if (maps[1].IsNull() || maps[2].IsNull()) return {};
    Conv c[3];
    for (int i = 0; i < 3; ++i) c[i] = maps[i].IsNull() ? Conv{} : ReadConv(maps[i]);
    const Conv& d = c[1];
    if (d.sh < 1 || d.sw < 1 || d.kh < 1 || d.kw < 1 || d.sh > 64 || d.sw > 64 || d.kh > 4096 || d.kw > 4096) return {};
    int64_t ih = h * d.sh, iw = w * d.sw;
    if (d.pad == 0) { ih += d.kh - d.sh; iw += d.kw - d.sw; }
    in = {T(kLiteRtElementTypeInt8, L({n, ih, iw, (maps[0].IsNull() ? d.cin : c[0].cin) + ((shape >> 5) & 1)}))};
    for (int i = 0; i < 3; ++i) {
      if (maps[i].IsNull()) continue;
      in.push_back(T(kLiteRtElementTypeInt8, i == 1 ? L({1, d.kh, d.kw, d.cout}) : L({c[i].cout, 1, 1, c[i].cin})));
      in.push_back(T(kLiteRtElementTypeInt32, L({c[i].cout})));
      if (Elements(in[in.size() - 2].layout) < 0) return {};
    }
    in.push_back(key);
    macs = Macs({n, ih, iw, c[0].cin, c[0].cout}) + Macs({n, h, w, d.kh, d.kw, d.cout}) +
           Macs({n, h, w, c[2].cin, c[2].cout});
    if (Elements(in[0].layout) < 0) return {};
  } else if (name == "KcspAvgPool2D") {
    const int64_t fh = Get(root, "filter_h", 1), fw = Get(root, "filter_w", 1), sh = Get(root, "stride_h", 1),
                  sw = Get(root, "stride_w", 1), ch = Get(root, "channels", 1);
    if (sh < 1 || sw < 1 || fh < 1 || fw < 1 || sh > 64 || sw > 64 || fh > 64 || fw > 64) return {};
    int64_t ih = h * sh, iw = w * sw;
    if (Get(root, "padding", 1) == 0) { ih += fh - sh; iw += fw - sw; }
    in = {T(kLiteRtElementTypeInt8, L({n, ih, iw, ch + ((shape >> 5) & 1)})), key};
    macs = Macs({n, ih, iw, ch, fh});
    if (Elements(in[0].layout) < 0) return {};
  } else if (name == "CspDenseBlock") {
    const int64_t cin = Get(root, "in_channels", 1), in_off = Get(root, "in_offset", 0);
    in.push_back(T(kLiteRtElementTypeInt8, L({n, h, w, in_off + cin + ((shape >> 5) & 1)})));
    if (Elements(in[0].layout) < 0) return {};
    try {
      flex::Ref layers = root.Get("layers");
      for (size_t i = 0; i < layers.Size(); ++i) {
        flex::Ref chain = layers.At(i);
        for (size_t j = 0; j < chain.Size(); ++j) {
          Conv c = ReadConv(chain.At(j));
          in.push_back(T(kLiteRtElementTypeInt8, L({c.cout, c.kh, c.kw, c.cin})));
          in.push_back(T(kLiteRtElementTypeInt32, L({c.cout})));
          if (Elements(in[in.size() - 2].layout) < 0) return {};
          macs += Macs({n, h, w, c.kh, c.kw, c.cin, c.cout});
          if (macs > kMaxMacs) macs = kMaxMacs + 1;
        }
      }
    } catch (const flex::FlexError&) {
      return {};
    }
    in.push_back(key);
  } else if (name == "CspBlock") {
    // activation inputs wide enough for every slot a step reads; weights per conv step
    const int64_t k_in = Get(root, "inputs", 1);
    if (k_in < 1 || k_in > 64) return {};
    std::vector<int64_t> need(k_in, 1);
    std::vector<LiteRtRankedTensorType> weights;
    try {
      flex::Ref steps = root.Get("steps");
      for (size_t i = 0; i < steps.Size(); ++i) {
        flex::Ref st = steps.At(i);
        for (const char* key : {"src", "residual"}) {
          flex::Ref slot = st.Get(key);
          if (slot.IsNull() || slot.Size() != 4 || slot.At(0).AsInt() != 0) continue;
          const int64_t idx = slot.At(1).AsInt();
          if (idx >= 0 && idx < k_in) need[idx] = std::max(need[idx], slot.At(2).AsInt() + slot.At(3).AsInt());
        }
        if (st.Get("op").IsNull() || st.Get("op").AsString() != "conv") continue;
        Conv c = ReadConv(st);
        weights.push_back(T(kLiteRtElementTypeInt8, L({c.cout, c.kh, c.kw, c.cin})));
        weights.push_back(T(kLiteRtElementTypeInt32, L({c.cout})));
        if (Elements(weights[weights.size() - 2].layout) < 0) return {};
        macs += Macs({n, h, w, c.kh, c.kw, c.cin, c.cout});
        if (macs > kMaxMacs) macs = kMaxMacs + 1;
      }
    } catch (const flex::FlexError&) {
      return {};
    }
    for (int64_t i = 0; i < k_in; ++i) {
      in.push_back(T(kLiteRtElementTypeInt8, L({n, h, w, need[i] + ((shape >> 5) & 1)})));
      if (Elements(in.back().layout) < 0) return {};
    }
    in.insert(in.end(), weights.begin(), weights.end());
    in.push_back(key);
  } else {
    in = {T(kLiteRtElementTypeFloat32, L({n, h, w, 3})), key};
  }
  *macs_out = macs;
  return in;
}

// The op a fuzz input's selector byte (its first byte) names: our eight custom ops or an unknown one.
constexpr int kOpNames = 9;
inline std::string OpName(uint8_t selector) {
  static const char* kNames[kOpNames] = {"CspPartialConv", "CspDenseBlock",        "KcspTestAffine",
                                         "CspBlock",       "KcspDepthwiseConv2D",  "KcspConv2D",
                                         "KcspAvgPool2D",  "KcspInvertedResidual", "NoSuchOp"};
  return kNames[selector % kOpNames];
}

}  // namespace kcsp_fuzz
