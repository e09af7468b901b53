// libFuzzer target: the custom-op options parser and the custom-op kernels it configures
// (kernels/runtime/flexbuffer_reader.cc, custom_ops.cc).
//
// Input layout:  [op selector][shape byte][perturbation byte][flexbuffer custom options ...]
//   op selector       CspPartialConv / CspDenseBlock / KcspTestAffine / CspBlock / KcspDepthwiseConv2D /
//                     KcspConv2D / KcspAvgPool2D / KcspInvertedResidual /
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
#include "option_inputs.h"

using namespace keras_csp;
using namespace keras_csp::runtime;
using namespace kcsp_fuzz;

namespace {

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

void Exercise(const std::string& name, NodeKernel* k, const flex::Ref& root, int node,
              uint8_t shape, uint8_t perturb) {
  (void)k->Describe();
  int64_t macs = 0;
  std::vector<LiteRtRankedTensorType> in = InputsFor(name, root, node, shape, &macs);
  if (in.empty()) return;
  RunKernel(k, in, perturb, macs);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const std::string name = OpName(data[0]);
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
  const auto numerics = static_cast<Numerics>(data[0] / kOpNames % 3);
  std::unique_ptr<NodeKernel> k = CreateNodeKernel(name, p, opts.size(), &node, &error, numerics);
  if (!k) {
    if (error.empty()) __builtin_trap();  // a rejection must say why
    return 0;
  }
  if (node < 0 || node >= (1 << 20)) __builtin_trap();
  Exercise(name, k.get(), flex::GetRoot(p, opts.size()), node, shape, perturb);
  return 0;
}
