// libFuzzer target: the custom-op options parser and the custom-op kernels it configures
// (kernels/runtime/flexbuffer_reader.cc, custom_ops.cc).
//
// Input layout:  [op selector][shape byte][perturbation byte][flexbuffer custom options ...]
//   op selector       CspPartialConv / CspDenseBlock / KcspTestAffine / CspBlock / KcspDepthwiseConv2D /
//                     an unknown name
//   options           the bytes LiteRT hands to the custom op's Init (seeds: the options of the
//                     fused models keras_csp.tflite.fuse writes, see make_seeds.py)
// Steps: (1) the generic flexbuffer reader walks the whole buffer (every key / element, with
// the typed accessors); (2) CreateNodeKernel parses the options into the node config;
// (3) if accepted, the harness builds the input layouts the options describe (read back from
// the same map), optionally perturbed by the perturbation byte (wrong rank / channels /
// spatial size / dtype / key / input count), calls OutputLayouts and, when the op accepted
// its layouts and the work is small, Run on heap buffers of exactly the declared sizes.
// Any FlexError / error string is a clean rejection; ASan/UBSan reports, aborts or uncaught
// exceptions are failures.
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "custom_ops.h"
#include "flexbuffer_reader.h"
#include "keras_csp/conv.h"

using namespace keras_csp;
using namespace keras_csp::runtime;

namespace {

constexpr int64_t kMaxBytes = 1 << 16;  // largest tensor the harness allocates
constexpr int64_t kMaxMacs = 1 << 13;   // largest Run the harness performs

// Walks any flexbuffer value (bounded depth / element count) with the accessors that apply to
// its type (exceptions are expensive under ASan: the mismatched-accessor paths run once per
// input, at the root).
void Walk(const flex::Ref& r, int depth, int* budget) {
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

void WalkRoot(const flex::Ref& r) {
  int budget = 96;
  Walk(r, 0, &budget);
  // mismatched accessors must throw FlexError, not misbehave
  try { (void)r.AsString(); } catch (const flex::FlexError&) {}
  try { (void)r.AsIntVector(); } catch (const flex::FlexError&) {}
  try { (void)r.Get("version"); } catch (const flex::FlexError&) {}
}

int64_t Get(const flex::Ref& m, const char* key, int64_t dflt) {
  try {
    flex::Ref r = m.Get(key);
    return r.IsNull() ? dflt : r.AsInt();
  } catch (const flex::FlexError&) {
    return dflt;
  }
}

LiteRtLayout L(std::initializer_list<int64_t> dims) {
  LiteRtLayout l;
  std::memset(&l, 0, sizeof(l));
  l.rank = static_cast<unsigned>(dims.size());
  int i = 0;
  for (int64_t d : dims) l.dimensions[i++] = static_cast<int32_t>(d);
  return l;
}

int64_t Elements(const LiteRtLayout& l) {
  int64_t n = 1;
  for (unsigned i = 0; i < l.rank && i < KCSP_LITERT_TENSOR_MAX_RANK; ++i) {
    if (l.dimensions[i] < 0) return -1;
    n *= l.dimensions[i];
    if (n > kMaxBytes) return -1;
  }
  return n;
}

size_t ElemSize(LiteRtElementType t) {
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
Conv ReadConv(const flex::Ref& m) {
  return {Get(m, "kernel_h", 1), Get(m, "kernel_w", 1), Get(m, "stride_h", 1),
          Get(m, "stride_w", 1), Get(m, "padding", 1), Get(m, "in_channels", 1),
          Get(m, "out_channels", 1)};
}

void Perturb(uint8_t p, std::vector<LiteRtRankedTensorType>* t) {
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

void RunKernel(NodeKernel* k, std::vector<LiteRtRankedTensorType> in, uint8_t perturb,
               int64_t macs) {
  // 1) GetOutputLayouts (maybe perturbed), 2) Run (perturbed independently: LiteRT may hand
  // Run other shapes than it asked the layouts for, e.g. after a resize).
  std::vector<LiteRtLayout> in_layouts;
  std::vector<LiteRtRankedTensorType> t_layout = in;
  Perturb(perturb, &t_layout);
  for (auto& t : t_layout) in_layouts.push_back(t.layout);
  LiteRtLayout out[2];
  std::memset(out, 0, sizeof(out));
  const size_t no = (perturb == 0xff) ? 2 : 1;
  std::string e = k->OutputLayouts(in_layouts.size(), in_layouts.data(), no, out);
  if (!e.empty() || macs > kMaxMacs) return;
  std::vector<LiteRtRankedTensorType> t_run = in;
  Perturb(static_cast<uint8_t>(perturb * 37 + 11), &t_run);
  // Buffers: exactly the bytes of each (run) layout; the output as the layouts said.
  std::vector<std::vector<uint8_t>> bufs;
  std::vector<void*> ptrs;
  std::vector<size_t> bytes;
  for (auto& t : t_run) {
    int64_t n = Elements(t.layout);
    if (n < 0) n = 0;
    size_t b = static_cast<size_t>(n) * ElemSize(t.element_type);
    bufs.emplace_back(b, static_cast<uint8_t>(perturb + bufs.size()));
    ptrs.push_back(bufs.back().data());
    bytes.push_back(b);
  }
  int64_t on = Elements(out[0]);
  if (on < 0) return;
  const size_t ob = static_cast<size_t>(on) * (t_run[0].element_type ==
                                                       kLiteRtElementTypeFloat32 ? 4 : 1);
  std::vector<uint8_t> obuf(ob, 0x5a);
  std::vector<void*> outs{obuf.data()};
  std::vector<size_t> out_bytes{ob};
  (void)k->Run(ptrs, bytes, t_run, outs, out_bytes, nullptr);
  // A second run re-uses the packed weights (the kernel caches them by pointer), on 2 threads.
  static keras_csp::ThreadPool pool(2);
  (void)k->Run(ptrs, bytes, t_run, outs, out_bytes, &pool);
}

LiteRtRankedTensorType T(LiteRtElementType e, LiteRtLayout l) {
  LiteRtRankedTensorType t;
  t.element_type = e;
  t.layout = l;
  return t;
}

void Exercise(const std::string& name, NodeKernel* k, const flex::Ref& root, int node,
              uint8_t shape, uint8_t perturb) {
  (void)k->Describe();
  const int64_t n = 1 + (shape & 1);
  const int64_t h = 1 + ((shape >> 1) & 3), w = 1 + ((shape >> 3) & 3);
  const LiteRtRankedTensorType key = T(kLiteRtElementTypeInt8, L({node + 1}));
  std::vector<LiteRtRankedTensorType> in;
  int64_t macs = 0;
  if (name == "CspPartialConv") {
    Conv c = ReadConv(root);
    const int64_t c_skip = Get(root, "c_skip", 1), skip_off = Get(root, "skip_offset", 0),
                  conv_off = Get(root, "conv_offset", 0);
    if (c.sh < 1 || c.sw < 1 || c.kh < 1 || c.kw < 1 || c.sh > 64 || c.sw > 64) return;
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
      return;
    }
    Conv d{};
    if (!dw_map.IsNull()) {  // a depthwise skip part: skip_src has its input size and channels
      d = ReadConv(dw_map);
      if (d.sh < 1 || d.sw < 1 || d.kh < 1 || d.kw < 1 || d.sh > 64 || d.sw > 64) return;
      int64_t sh = h * d.sh, sw = w * d.sw;
      if (d.pad == 0) { sh += d.kh - d.sh; sw += d.kw - d.sw; }
      sl = L({n, sh, sw, skip_off + d.cin + ((shape >> 7) & 1)});
      macs += n * h * w * d.kh * d.kw * d.cout;
    }
    in = {T(kLiteRtElementTypeInt8, sl), T(kLiteRtElementTypeInt8, cl),
          T(kLiteRtElementTypeInt8, L({c.cout, c.kh, c.kw, c.cin})),
          T(kLiteRtElementTypeInt32, L({c.cout}))};
    if (!dw_map.IsNull()) {
      in.push_back(T(kLiteRtElementTypeInt8, L({1, d.kh, d.kw, d.cout})));
      in.push_back(T(kLiteRtElementTypeInt32, L({d.cout})));
      if (Elements(in[4].layout) < 0) return;
    }
    bool add = false;
    try {
      add = !root.Get("add").IsNull();
    } catch (const flex::FlexError&) {
      return;
    }
    if (add) in.push_back(T(kLiteRtElementTypeInt8, L({n, h, w, c.cout})));  // the residual
    in.push_back(key);
    macs += n * ch * cw * c.kh * c.kw * c.cin * c.cout;
    if (Elements(cl) < 0 || Elements(sl) < 0 || Elements(in[2].layout) < 0) return;
  } else if (name == "KcspDepthwiseConv2D") {
    Conv c = ReadConv(root);
    const int64_t in_off = Get(root, "in_offset", 0);
    if (c.sh < 1 || c.sw < 1 || c.kh < 1 || c.kw < 1 || c.sh > 64 || c.sw > 64) return;
    int64_t ih = h * c.sh, iw = w * c.sw;
    if (c.pad == 0) { ih += c.kh - c.sh; iw += c.kw - c.sw; }
    in = {T(kLiteRtElementTypeInt8, L({n, ih, iw, in_off + c.cin + ((shape >> 5) & 1)})),
          T(kLiteRtElementTypeInt8, L({1, c.kh, c.kw, c.cout})), T(kLiteRtElementTypeInt32, L({c.cout})), key};
    macs = n * h * w * c.kh * c.kw * c.cout;
    if (Elements(in[0].layout) < 0 || Elements(in[1].layout) < 0) return;
  } else if (name == "CspDenseBlock") {
    const int64_t cin = Get(root, "in_channels", 1), in_off = Get(root, "in_offset", 0);
    in.push_back(T(kLiteRtElementTypeInt8, L({n, h, w, in_off + cin + ((shape >> 5) & 1)})));
    if (Elements(in[0].layout) < 0) return;
    try {
      flex::Ref layers = root.Get("layers");
      for (size_t i = 0; i < layers.Size(); ++i) {
        flex::Ref chain = layers.At(i);
        for (size_t j = 0; j < chain.Size(); ++j) {
          Conv c = ReadConv(chain.At(j));
          in.push_back(T(kLiteRtElementTypeInt8, L({c.cout, c.kh, c.kw, c.cin})));
          in.push_back(T(kLiteRtElementTypeInt32, L({c.cout})));
          if (Elements(in[in.size() - 2].layout) < 0) return;
          macs += n * h * w * c.kh * c.kw * c.cin * c.cout;
          if (macs > kMaxMacs) macs = kMaxMacs + 1;
        }
      }
    } catch (const flex::FlexError&) {
      return;
    }
    in.push_back(key);
  } else if (name == "CspBlock") {
    // activation inputs wide enough for every slot a step reads; weights per conv step
    const int64_t k_in = Get(root, "inputs", 1);
    if (k_in < 1 || k_in > 64) return;
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
        if (Elements(weights[weights.size() - 2].layout) < 0) return;
        macs += n * h * w * c.kh * c.kw * c.cin * c.cout;
        if (macs > kMaxMacs) macs = kMaxMacs + 1;
      }
    } catch (const flex::FlexError&) {
      return;
    }
    for (int64_t i = 0; i < k_in; ++i) {
      in.push_back(T(kLiteRtElementTypeInt8, L({n, h, w, need[i] + ((shape >> 5) & 1)})));
      if (Elements(in.back().layout) < 0) return;
    }
    in.insert(in.end(), weights.begin(), weights.end());
    in.push_back(key);
  } else {
    in = {T(kLiteRtElementTypeFloat32, L({n, h, w, 3})), key};
  }
  RunKernel(k, in, perturb, macs);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  static const char* kNames[] = {"CspPartialConv", "CspDenseBlock",       "KcspTestAffine",
                                 "CspBlock",       "KcspDepthwiseConv2D", "NoSuchOp"};
  const std::string name = kNames[data[0] % 6];
  const uint8_t shape = data[1], perturb = data[2];
  // Copy the options into their own allocation so ASan catches reads past either end.
  std::vector<uint8_t> opts(data + 3, data + size);
  const uint8_t* p = opts.empty() ? nullptr : opts.data();

  try {
    flex::Ref root = flex::GetRoot(p, opts.size());
    WalkRoot(root);
  } catch (const flex::FlexError&) {
  }

  int node = -1;
  std::string error;
  // The runtime parses the options for one of three numerics (see custom_ops.h): all of them
  // read different fields.
  const auto numerics = static_cast<Numerics>(data[0] / 6 % 3);
  std::unique_ptr<NodeKernel> k = CreateNodeKernel(name, p, opts.size(), &node, &error, numerics);
  if (!k) {
    if (error.empty()) __builtin_trap();  // a rejection must say why
    return 0;
  }
  if (node < 0 || node >= (1 << 20)) __builtin_trap();
  Exercise(name, k.get(), flex::GetRoot(p, opts.size()), node, shape, perturb);
  return 0;
}
