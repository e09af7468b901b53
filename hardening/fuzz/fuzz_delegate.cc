// libFuzzer target: the TFLite delegate front door (kernels/runtime/delegate.cc) driven by a fake
// interpreter: its Prepare walks a one- or two-node graph of our CUSTOM ops, claims them, and the
// fake ReplaceNodeSubsetsWithDelegateKernels runs the delegate kernel's init / prepare / invoke /
// free as TFLite does (partition inputs and outputs, output resizes, tensors internal to the
// partition, which get no memory from the interpreter).
//
// Input layout: the custom_options corpus format, [op selector][shape][perturbation][options...]
// (so that corpus seeds this target too). The tensors come from the options (option_inputs.h),
// perturbed 1 time in 8; the declared output shape is wrong 1 time in 4 (the delegate must resize
// it); a KcspTestAffine node is chained twice 1 time in 2 (an internal tensor). The plugin entry
// points parse the numerics / thread options. Rejections must come with a message (ReportError or
// the plugin's error callback); ASan/UBSan reports, aborts and uncaught exceptions are failures.
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "delegate.h"
#include "option_inputs.h"

using namespace kcsp_fuzz;

namespace {

struct FakeGraph;
FakeGraph* g_graph = nullptr;  // the fake context's impl_ (one graph at a time)

struct IntArray {
  std::vector<int> storage;
  TfLiteIntArray* get() { return reinterpret_cast<TfLiteIntArray*>(storage.data()); }
  explicit IntArray(const std::vector<int>& v) : storage(1 + v.size()) {
    storage[0] = int(v.size());
    std::copy(v.begin(), v.end(), storage.begin() + 1);
  }
};

struct FakeGraph {
  TfLiteContext context{};
  std::vector<TfLiteTensor> tensors;
  std::vector<std::vector<uint8_t>> data;
  std::vector<std::unique_ptr<TfLiteIntArray, void (*)(void*)>> dims;
  std::vector<TfLiteNode> nodes;
  std::vector<TfLiteRegistration> regs;
  std::vector<std::unique_ptr<IntArray>> arrays;  // node inputs/outputs, the plan
  std::unique_ptr<IntArray> plan;
  std::string custom_name;
  std::vector<std::vector<uint8_t>> options;
  std::string errors;
  bool replaced = false;
  uint8_t perturb = 0;
  int64_t macs = 0;

  TfLiteIntArray* Array(const std::vector<int>& v) {
    arrays.push_back(std::make_unique<IntArray>(v));
    return arrays.back()->get();
  }
  void SetDims(int t, const LiteRtLayout& l) {
    auto* a = static_cast<TfLiteIntArray*>(std::malloc(sizeof(int) * (1 + l.rank)));
    a->size = int(l.rank);
    for (unsigned i = 0; i < l.rank; ++i) a->data[i] = l.dimensions[i];
    dims[t].reset(a);
    tensors[t].dims = a;
  }
  int AddTensor(LiteRtElementType type, const LiteRtLayout& l) {
    tensors.push_back(TfLiteTensor{});
    dims.emplace_back(nullptr, &std::free);
    data.emplace_back();
    tensors.back().type = type;
    SetDims(int(tensors.size()) - 1, l);
    return int(tensors.size()) - 1;
  }
  // Allocates every tensor the way the arena would: exactly its bytes (ASan catches overreads).
  bool Allocate() {
    for (size_t t = 0; t < tensors.size(); ++t) {
      LiteRtLayout l{};
      l.rank = unsigned(tensors[t].dims->size);
      for (int i = 0; i < tensors[t].dims->size; ++i) l.dimensions[i] = tensors[t].dims->data[i];
      int64_t n = Elements(l);
      if (n < 0) return false;
      size_t b = size_t(n) * ElemSize(tensors[t].type);
      data[t].assign(b, static_cast<uint8_t>(perturb + t));
      tensors[t].bytes = b;
      tensors[t].data = b ? data[t].data() : nullptr;
    }
    return true;
  }
};

TfLiteStatus GetExecutionPlan(TfLiteContext*, TfLiteIntArray** plan) {
  *plan = g_graph->plan->get();
  return kTfLiteOk;
}

TfLiteStatus GetNodeAndRegistration(TfLiteContext*, int i, TfLiteNode** node, TfLiteRegistration** reg) {
  if (i < 0 || size_t(i) >= g_graph->nodes.size()) return kTfLiteError;
  *node = &g_graph->nodes[i];
  *reg = &g_graph->regs[i];
  return kTfLiteOk;
}

TfLiteStatus ResizeTensor(TfLiteContext*, TfLiteTensor* t, TfLiteIntArray* new_size) {
  const int idx = int(t - g_graph->tensors.data());
  if (idx < 0 || size_t(idx) >= g_graph->tensors.size()) __builtin_trap();
  g_graph->dims[idx].reset(new_size);  // takes ownership, as TFLite does
  t->dims = new_size;
  return kTfLiteOk;
}

void ReportError(TfLiteContext*, const char* fmt, ...) {
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  g_graph->errors += buf;
}

TfLiteStatus Replace(TfLiteContext* ctx, TfLiteRegistration reg, const TfLiteIntArray* nodes, TfLiteDelegate* d) {
  FakeGraph& g = *g_graph;
  g.replaced = true;
  // One partition of all claimed nodes (they form a chain here): its inputs are the tensors its
  // nodes read but do not write; its outputs the last node's, plus the middle tensor 1 time in 2.
  std::vector<int> ids(nodes->data, nodes->data + nodes->size), ins, outs, written;
  for (int id : ids)
    for (int i = 0; i < g.nodes[id].outputs->size; ++i) written.push_back(g.nodes[id].outputs->data[i]);
  for (int id : ids)
    for (int i = 0; i < g.nodes[id].inputs->size; ++i) {
      int t = g.nodes[id].inputs->data[i];
      if (std::find(written.begin(), written.end(), t) == written.end()) ins.push_back(t);
    }
  const int last = ids.back();
  for (int i = 0; i < g.nodes[last].outputs->size; ++i) outs.push_back(g.nodes[last].outputs->data[i]);
  if (ids.size() > 1 && (g.perturb & 0x40)) outs.push_back(g.nodes[ids[0]].outputs->data[0]);
  TfLiteDelegateParams params{d, const_cast<TfLiteIntArray*>(nodes), g.Array(ins), g.Array(outs)};
  TfLiteNode node{};
  node.builtin_data = &params;
  node.delegate = d;
  node.user_data = reg.init(ctx, reinterpret_cast<const char*>(&params), 0);
  if (!node.user_data) __builtin_trap();
  TfLiteStatus st = reg.prepare(ctx, &node);
  if (st != kTfLiteOk && g.errors.empty()) __builtin_trap();  // a refusal must say why
  if (st == kTfLiteOk && g.macs <= kMaxMacs && g.Allocate()) {
    for (int k = 0; k < 2; ++k)
      if (reg.invoke(ctx, &node) != kTfLiteOk && g.errors.empty()) __builtin_trap();
  }
  reg.free(ctx, node.user_data);
  return kTfLiteOk;
}

void PluginError(const char* msg) {
  if (!msg || !*msg) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const std::string name = OpName(data[0]);
  const uint8_t shape = data[1], perturb = data[2];
  std::vector<uint8_t> opts(data + 3, data + size);

  // The plugin entry point, with the numerics the selector byte picks and 1 or 2 threads.
  static const char* kNumerics[] = {"auto", "xnnpack", "builtin", "reference"};
  std::string threads = std::to_string(1 + (perturb >> 7));
  const char* keys[] = {"litert_version", "numerics", "num_threads"};
  const char* vals[] = {"2.3.0", kNumerics[data[0] / kOpNames % 4], threads.c_str()};
  std::unique_ptr<TfLiteDelegate, void (*)(TfLiteDelegate*)> d(
      tflite_plugin_create_delegate(const_cast<char**>(keys), const_cast<char**>(vals), 3, &PluginError),
      &tflite_plugin_destroy_delegate);
  if (!d) __builtin_trap();

  FakeGraph g;
  g_graph = &g;
  g.perturb = perturb;
  std::vector<LiteRtRankedTensorType> in;
  try {
    const uint8_t* p = opts.empty() ? nullptr : opts.data();
    flex::Ref root = flex::GetRoot(p, opts.size());
    int64_t node = 0;
    try {
      node = Get(root, "node", 0);
    } catch (...) {
    }
    in = InputsFor(name, root, int(std::max<int64_t>(0, std::min<int64_t>(node, 1 << 16))), shape, &g.macs);
  } catch (const flex::FlexError&) {
  }
  if (in.empty()) in = {T(kLiteRtElementTypeFloat32, L({1, 2, 2, 3})), T(kLiteRtElementTypeInt8, L({1}))};
  Perturb(perturb, &in);
  for (auto& t : in)
    if (t.layout.rank > KCSP_LITERT_TENSOR_MAX_RANK) t.layout.rank = 5;  // TFLite dims hold any rank
  const bool chain = name == "KcspTestAffine" && (shape & 0x80);
  // Graph: node 0 = op(inputs) -> t_out0; a chained KcspTestAffine reads t_out0 (+ the key).
  std::vector<int> in_ids;
  for (auto& t : in) in_ids.push_back(g.AddTensor(t.element_type, t.layout));
  LiteRtLayout out_l = in[0].layout;
  if ((perturb & 3) == 0 && out_l.rank) out_l.dimensions[out_l.rank - 1] += 1;  // wrong: must be resized
  const LiteRtElementType out_t = name == "KcspTestAffine" ? kLiteRtElementTypeFloat32 : kLiteRtElementTypeInt8;
  const int out0 = g.AddTensor(out_t, out_l);
  g.nodes.resize(chain ? 2 : 1);
  g.regs.resize(g.nodes.size());
  g.custom_name = name;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    std::vector<int> ni = in_ids, no = {out0};
    if (i == 1) {
      ni = {out0, in_ids.back()};
      no = {g.AddTensor(out_t, out_l)};
    }
    g.nodes[i].inputs = g.Array(ni);
    g.nodes[i].outputs = g.Array(no);
    g.nodes[i].custom_initial_data = opts.empty() ? nullptr : opts.data();
    g.nodes[i].custom_initial_data_size = int(opts.size());
    g.regs[i].builtin_code = kTfLiteBuiltinCustom;
    g.regs[i].custom_name = g.custom_name.c_str();
  }
  std::vector<int> plan_ids;
  for (size_t i = 0; i < g.nodes.size(); ++i) plan_ids.push_back(int(i));
  g.plan = std::make_unique<IntArray>(plan_ids);
  TfLiteContext& c = g.context;
  c.tensors_size = g.tensors.size();
  c.tensors = g.tensors.data();
  c.GetExecutionPlan = &GetExecutionPlan;
  c.GetNodeAndRegistration = &GetNodeAndRegistration;
  c.ResizeTensor = &ResizeTensor;
  c.ReportError = &ReportError;
  c.ReplaceNodeSubsetsWithDelegateKernels = &Replace;
  c.recommended_num_threads = 1;
  TfLiteStatus st = d->Prepare(&c, d.get());
  if (st != kTfLiteOk && g.errors.empty()) __builtin_trap();
  (void)keras_csp_delegate_report(d.get(), nullptr, 0);
  g_graph = nullptr;
  return 0;
}
