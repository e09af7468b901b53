// keras-csp TFLite delegate (see delegate.h).
#include "delegate.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>

#include "custom_ops.h"
#include "keras_csp/threadpool.h"
#include "litert_lib.h"

namespace keras_csp::runtime {
namespace {

constexpr int64_t kTfLiteDelegateFlagsAllowDynamicTensors = 1;
constexpr int32_t kTfLiteBuiltinDelegate = 51;         // BuiltinOperator_DELEGATE
constexpr const char* kXnnpackKernelName = "TfLiteXNNPackDelegate";
constexpr const char* kOurKernelName = "KerasCspDelegate";
constexpr int kMaxTensorIndexSpan = 1 << 24;           // sanity bound on the interpreter's structs

// Per claimed node (CustomOpStat.node holds the interpreter's node index).
using NodeStats = CustomOpStat;

struct DelegateState {
  TfLiteDelegate delegate{};
  DelegateOptions options;
  std::mutex mu;  // guards everything below
  // Shared by every partition (one set of workers, not one per fused node); a partition keeps its
  // own reference, so an interpreter preparing with another thread count never frees a pool that
  // another interpreter's partition is running on.
  std::shared_ptr<ThreadPool> pool;
  std::string numerics_in_use;
  std::vector<std::shared_ptr<NodeStats>> nodes;  // nodes claimed by the last Prepare
  // The interpreter's graph-inspection functions, saved while it offered them to our Prepare.
  // TFLite swaps them for "forbidden" stubs while kernels are prepared, but numerics "auto" must
  // look at the plan then: default delegates (XNNPACK) are applied after ours, at allocation.
  // They only read the plan and nodes of the subgraph behind context->impl_.
  decltype(TfLiteContext::GetExecutionPlan) get_plan = nullptr;
  decltype(TfLiteContext::GetNodeAndRegistration) get_node = nullptr;
};

DelegateState* StateOf(const TfLiteDelegate* d) { return static_cast<DelegateState*>(d->data_); }

void Report(TfLiteContext* context, const std::string& msg) {
  if (context && context->ReportError) context->ReportError(context, "%s", ("keras-csp delegate: " + msg).c_str());
}

bool IsOurOp(const char* name) {
  for (const auto& n : CustomOpNames())
    if (n == name) return true;
  return false;
}

std::string IndexList(const TfLiteIntArray* a, size_t tensors, std::vector<int>* out) {
  if (!a) return "missing index array";
  if (a->size < 0 || a->size > 4096) return "implausible index count " + std::to_string(a->size);
  for (int i = 0; i < a->size; ++i) {
    if (a->data[i] < 0 || size_t(a->data[i]) >= tensors)
      return "tensor index " + std::to_string(a->data[i]) + " out of range";
    out->push_back(a->data[i]);
  }
  return "";
}

bool ToLayout(const TfLiteIntArray* dims, LiteRtLayout* l) {
  *l = LiteRtLayout{};
  if (!dims || dims->size < 0 || dims->size > KCSP_LITERT_TENSOR_MAX_RANK) return false;
  l->rank = static_cast<unsigned>(dims->size);
  for (int i = 0; i < dims->size; ++i) l->dimensions[i] = dims->data[i];
  return true;
}

bool SameDims(const TfLiteIntArray* dims, const LiteRtLayout& l) {
  if (!dims || dims->size != int(l.rank)) return false;
  for (int i = 0; i < dims->size; ++i)
    if (dims->data[i] != l.dimensions[i]) return false;
  return true;
}

// One claimed node inside a delegate partition.
struct SubNode {
  std::string op;
  int node_index = -1;
  std::vector<uint8_t> options;  // the node's custom options (copied from the model)
  std::vector<int> inputs, outputs;
  std::unique_ptr<NodeKernel> kernel;
  std::vector<LiteRtRankedTensorType> in_types, out_types;  // set by Prepare
  std::shared_ptr<NodeStats> stats;
};

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};

// A delegate kernel: the claimed nodes TFLite grouped into one partition, run in order. Tensors
// produced and consumed inside the partition get no arena memory from TFLite, so they live here.
struct Partition {
  DelegateState* state = nullptr;
  std::vector<SubNode> nodes;
  std::set<int> partition_outputs;
  struct Buffer {
    std::unique_ptr<uint8_t, AlignedFree> data;
    size_t bytes = 0;
  };
  std::map<int, Buffer> internal;  // tensor index -> its buffer
  bool have_numerics = false;
  Numerics numerics = Numerics::kXnnpack;
  std::shared_ptr<ThreadPool> pool;
  std::string init_error;
};

bool ResolveDelegateNumerics(TfLiteContext* context, const DelegateState& st, Numerics* out,
                             std::string* err) {
  const std::string& requested = st.options.numerics;
  if (!requested.empty() && requested != "auto") {
    if (!ResolveNumerics(requested, "", out)) {
      *err = "unknown numerics '" + requested + "'";
      return false;
    }
    return true;
  }
  // The kernels around our ops: an XNNPACK partition in the plan means XNNPACK rounding.
  TfLiteIntArray* plan = nullptr;
  if (!st.get_plan || !st.get_node || st.get_plan(context, &plan) != kTfLiteOk || !plan) {
    *err = "cannot read the execution plan to choose numerics \"auto\"; pass numerics explicitly";
    return false;
  }
  *out = Numerics::kTfliteBuiltin;
  for (int i = 0; i < plan->size; ++i) {
    TfLiteNode* node = nullptr;
    TfLiteRegistration* reg = nullptr;
    if (st.get_node(context, plan->data[i], &node, &reg) != kTfLiteOk || !reg) continue;
    if (reg->builtin_code == kTfLiteBuiltinDelegate && reg->custom_name &&
        std::strcmp(reg->custom_name, kXnnpackKernelName) == 0) {
      *out = Numerics::kXnnpack;
      break;
    }
  }
  return true;
}

void* PartitionInit(TfLiteContext* context, const char* buffer, size_t) {
  auto* params = reinterpret_cast<const TfLiteDelegateParams*>(buffer);
  auto p = std::make_unique<Partition>();
  try {
    p->state = StateOf(params->delegate);
    std::vector<int> outs;
    if (auto e = IndexList(params->output_tensors, context->tensors_size, &outs); !e.empty()) throw std::runtime_error(e);
    p->partition_outputs.insert(outs.begin(), outs.end());
    const TfLiteIntArray* ids = params->nodes_to_replace;
    for (int i = 0; ids && i < ids->size; ++i) {
      TfLiteNode* node = nullptr;
      TfLiteRegistration* reg = nullptr;
      if (context->GetNodeAndRegistration(context, ids->data[i], &node, &reg) != kTfLiteOk || !node || !reg)
        throw std::runtime_error("cannot read node " + std::to_string(ids->data[i]));
      SubNode s;
      s.op = reg->custom_name ? reg->custom_name : "";
      s.node_index = ids->data[i];
      const auto* data = static_cast<const uint8_t*>(node->custom_initial_data);
      s.options.assign(data, data + node->custom_initial_data_size);
      if (auto e = IndexList(node->inputs, context->tensors_size, &s.inputs); !e.empty()) throw std::runtime_error(e);
      if (auto e = IndexList(node->outputs, context->tensors_size, &s.outputs); !e.empty()) throw std::runtime_error(e);
      s.stats = std::make_shared<NodeStats>();
      s.stats->op = s.op;
      s.stats->node = s.node_index;
      {
        std::lock_guard<std::mutex> l(p->state->mu);
        p->state->nodes.push_back(s.stats);
      }
      p->nodes.push_back(std::move(s));
    }
  } catch (const std::exception& e) {
    p->init_error = e.what();
  }
  return p.release();
}

void PartitionFree(TfLiteContext*, void* buffer) { delete static_cast<Partition*>(buffer); }

TfLiteStatus PartitionPrepare(TfLiteContext* context, TfLiteNode* node) {
  auto* p = static_cast<Partition*>(node->user_data);
  if (!p) return kTfLiteError;
  if (!p->init_error.empty()) {
    Report(context, p->init_error);
    return kTfLiteError;
  }
  DelegateState* st = p->state;
  try {
    Numerics numerics;
    std::string err;
    if (!ResolveDelegateNumerics(context, *st, &numerics, &err)) {
      Report(context, err);
      return kTfLiteError;
    }
    {
      std::lock_guard<std::mutex> l(st->mu);
      st->numerics_in_use = NumericsName(numerics);
      int threads = st->options.num_threads > 0 ? st->options.num_threads
                    : context->recommended_num_threads > 0 ? context->recommended_num_threads : 1;
      if (!st->pool || st->pool->threads() != threads) st->pool = std::make_shared<ThreadPool>(threads);
      p->pool = st->pool;
    }
    if (!p->have_numerics || p->numerics != numerics) {
      for (auto& s : p->nodes) {
        int id = -1;
        s.kernel = CreateNodeKernel(s.op, s.options.data(), s.options.size(), &id, &err, numerics);
        if (!s.kernel) {
          Report(context, "node " + std::to_string(s.node_index) + " (" + s.op + "): invalid custom options: " + err);
          return kTfLiteError;
        }
        s.stats->detail = s.kernel->Describe();
      }
      p->have_numerics = true;
      p->numerics = numerics;
    }
    std::map<int, LiteRtRankedTensorType> internal_types;
    p->internal.clear();
    for (auto& s : p->nodes) {
      const std::string where = "node " + std::to_string(s.node_index) + " (" + s.op + "): ";
      s.in_types.assign(s.inputs.size(), LiteRtRankedTensorType{});
      std::vector<LiteRtLayout> in(s.inputs.size()), out(s.outputs.size());
      for (size_t i = 0; i < s.inputs.size(); ++i) {
        auto it = internal_types.find(s.inputs[i]);
        if (it != internal_types.end()) {
          s.in_types[i] = it->second;
        } else {
          const TfLiteTensor& t = context->tensors[s.inputs[i]];
          s.in_types[i].element_type = t.type;
          if (!ToLayout(t.dims, &s.in_types[i].layout)) {
            Report(context, where + "input " + std::to_string(i) + " has no static shape of rank <= 8");
            return kTfLiteError;
          }
        }
        in[i] = s.in_types[i].layout;
      }
      if (auto e = s.kernel->OutputLayouts(in.size(), in.data(), out.size(), out.data()); !e.empty()) {
        Report(context, where + e);
        return kTfLiteError;
      }
      s.out_types.assign(s.outputs.size(), LiteRtRankedTensorType{});
      for (size_t o = 0; o < s.outputs.size(); ++o) {
        TfLiteTensor* t = &context->tensors[s.outputs[o]];
        s.out_types[o].element_type = t->type;
        s.out_types[o].layout = out[o];
        const size_t elem = ElementSize(t->type);
        if (elem == 0) {
          Report(context, where + "output " + std::to_string(o) + " has unsupported type " + std::to_string(t->type));
          return kTfLiteError;
        }
        if (p->partition_outputs.count(s.outputs[o])) {
          if (!SameDims(t->dims, out[o])) {
            auto* dims = static_cast<TfLiteIntArray*>(std::malloc(sizeof(int) * (1 + out[o].rank)));
            if (!dims) return kTfLiteError;
            dims->size = int(out[o].rank);
            for (unsigned d = 0; d < out[o].rank; ++d) dims->data[d] = out[o].dimensions[d];
            if (context->ResizeTensor(context, t, dims) != kTfLiteOk) {  // takes ownership of dims
              Report(context, where + "cannot resize output to " + LayoutStr(out[o]));
              return kTfLiteError;
            }
          }
        } else {
          internal_types[s.outputs[o]] = s.out_types[o];
          size_t bytes = elem;
          for (unsigned d = 0; d < out[o].rank; ++d) bytes *= size_t(std::max(0, out[o].dimensions[d]));
          void* buf = std::aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
          if (!buf) return kTfLiteError;
          Partition::Buffer& b = p->internal[s.outputs[o]];
          b.data.reset(static_cast<uint8_t*>(buf));
          b.bytes = bytes;
        }
      }
    }
    return kTfLiteOk;
  } catch (const std::exception& e) {
    Report(context, std::string("prepare: ") + e.what());
    return kTfLiteError;
  }
}

TfLiteStatus PartitionInvoke(TfLiteContext* context, TfLiteNode* node) {
  auto* p = static_cast<Partition*>(node->user_data);
  if (!p || !p->have_numerics) return kTfLiteError;
  ThreadPool* pool = p->pool.get();
  try {
    std::vector<void*> in, out;
    std::vector<size_t> in_bytes, out_bytes;
    for (auto& s : p->nodes) {
      auto locate = [&](int idx, void** ptr, size_t* bytes) {
        auto it = p->internal.find(idx);
        if (it != p->internal.end()) {
          *ptr = it->second.data.get();
          *bytes = it->second.bytes;
        } else {
          *ptr = context->tensors[idx].data;
          *bytes = context->tensors[idx].bytes;
        }
        return *ptr != nullptr;
      };
      in.assign(s.inputs.size(), nullptr);
      in_bytes.assign(s.inputs.size(), 0);
      out.assign(s.outputs.size(), nullptr);
      out_bytes.assign(s.outputs.size(), 0);
      for (size_t i = 0; i < s.inputs.size(); ++i)
        if (!locate(s.inputs[i], &in[i], &in_bytes[i])) {
          Report(context, "node " + std::to_string(s.node_index) + ": input " + std::to_string(i) + " has no data");
          return kTfLiteError;
        }
      for (size_t o = 0; o < s.outputs.size(); ++o)
        if (!locate(s.outputs[o], &out[o], &out_bytes[o])) {
          Report(context, "node " + std::to_string(s.node_index) + ": output " + std::to_string(o) + " has no data");
          return kTfLiteError;
        }
      auto t0 = std::chrono::steady_clock::now();
      std::string e = s.kernel->Run(in, in_bytes, s.in_types, out, out_bytes, pool);
      auto t1 = std::chrono::steady_clock::now();
      if (!e.empty()) {
        Report(context, "node " + std::to_string(s.node_index) + " (" + s.op + "): " + e);
        return kTfLiteError;
      }
      s.stats->calls++;
      s.stats->total_ms += std::chrono::duration<double, std::milli>(t1 - t0).count();
    }
    return kTfLiteOk;
  } catch (const std::exception& e) {
    Report(context, std::string("invoke: ") + e.what());
    return kTfLiteError;
  }
}

TfLiteStatus DelegatePrepare(TfLiteContext* context, TfLiteDelegate* delegate) {
  DelegateState* st = StateOf(delegate);
  try {
    if (!context->GetExecutionPlan || !context->GetNodeAndRegistration ||
        !context->ReplaceNodeSubsetsWithDelegateKernels || context->tensors_size > size_t(kMaxTensorIndexSpan)) {
      Report(context, "the interpreter's context does not look like TFLite's (wrong runtime version?)");
      return kTfLiteError;
    }
    {
      std::lock_guard<std::mutex> l(st->mu);
      st->get_plan = context->GetExecutionPlan;
      st->get_node = context->GetNodeAndRegistration;
    }
    TfLiteIntArray* plan = nullptr;
    if (context->GetExecutionPlan(context, &plan) != kTfLiteOk || !plan || plan->size < 0 ||
        plan->size > kMaxTensorIndexSpan) {
      Report(context, "cannot read the execution plan");
      return kTfLiteError;
    }
    // Option check with the requested numerics ("auto" is decided at prepare; builtin is the
    // rounding every fused file since options version 1 carries).
    Numerics check = Numerics::kTfliteBuiltin;
    if (!st->options.numerics.empty() && st->options.numerics != "auto")
      ResolveNumerics(st->options.numerics, "", &check);
    std::vector<int> claimed;
    for (int i = 0; i < plan->size; ++i) {
      TfLiteNode* node = nullptr;
      TfLiteRegistration* reg = nullptr;
      if (context->GetNodeAndRegistration(context, plan->data[i], &node, &reg) != kTfLiteOk || !node || !reg) continue;
      if (reg->builtin_code != kTfLiteBuiltinCustom || !reg->custom_name || !IsOurOp(reg->custom_name)) continue;
      const std::string where = "node " + std::to_string(plan->data[i]) + " (" + reg->custom_name + "): ";
      std::vector<int> idx;
      std::string e = IndexList(node->inputs, context->tensors_size, &idx);
      if (e.empty()) e = IndexList(node->outputs, context->tensors_size, &idx);
      if (!e.empty()) {
        Report(context, where + e);
        return kTfLiteError;
      }
      if (!node->custom_initial_data || node->custom_initial_data_size <= 0) {
        Report(context, where + "has no custom options (was the file written by `keras-csp fuse`?)");
        return kTfLiteError;
      }
      int id = -1;
      auto k = CreateNodeKernel(reg->custom_name, static_cast<const uint8_t*>(node->custom_initial_data),
                                size_t(node->custom_initial_data_size), &id, &e, check);
      if (!k) {
        Report(context, where + "invalid custom options: " + e);
        return kTfLiteError;
      }
      claimed.push_back(plan->data[i]);
    }
    {
      std::lock_guard<std::mutex> l(st->mu);
      st->nodes.clear();
    }
    if (claimed.empty()) return kTfLiteOk;
    std::unique_ptr<TfLiteIntArray, AlignedFree> nodes(
        static_cast<TfLiteIntArray*>(std::malloc(sizeof(int) * (1 + claimed.size()))));
    nodes->size = int(claimed.size());
    std::memcpy(nodes->data, claimed.data(), sizeof(int) * claimed.size());
    TfLiteRegistration reg{};
    reg.init = &PartitionInit;
    reg.free = &PartitionFree;
    reg.prepare = &PartitionPrepare;
    reg.invoke = &PartitionInvoke;
    reg.builtin_code = kTfLiteBuiltinDelegate;
    reg.custom_name = kOurKernelName;
    reg.version = 1;
    return context->ReplaceNodeSubsetsWithDelegateKernels(context, reg, nodes.get(), delegate);
  } catch (const std::exception& e) {
    Report(context, std::string("prepare: ") + e.what());
    return kTfLiteError;
  }
}

bool ParseBool(const std::string& v, bool* out) {
  if (v == "true" || v == "1" || v == "True") *out = true;
  else if (v == "false" || v == "0" || v == "False") *out = false;
  else return false;
  return true;
}

std::string JsonEscape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\', o += c;
    else if (static_cast<unsigned char>(c) < 0x20) o += ' ';
    else o += c;
  }
  return o;
}

}  // namespace

std::string ParseDelegateOptions(const std::vector<std::pair<std::string, std::string>>& kv,
                                 DelegateOptions* out) {
  for (const auto& [k, v] : kv) {
    if (k == "litert_version") {
      out->litert_version = v;
    } else if (k == "allow_untested_version") {
      if (!ParseBool(v, &out->allow_untested_version)) return "allow_untested_version must be true or false, got '" + v + "'";
    } else if (k == "numerics") {
      Numerics n;
      if (v != "auto" && !ResolveNumerics(v, "", &n))
        return "numerics must be auto, xnnpack, builtin or reference, got '" + v + "'";
      out->numerics = v;
    } else if (k == "num_threads") {
      char* end = nullptr;
      long t = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || t < 0 || t > 256) return "num_threads must be an integer in [0, 256], got '" + v + "'";
      out->num_threads = int(t);
    } else {
      return "unknown option '" + k + "' (known: litert_version, allow_untested_version, numerics, num_threads)";
    }
  }
  return "";
}

TfLiteDelegate* CreateDelegate(const DelegateOptions& options, std::string* error) {
  int major = 0, minor = 0;
  if (options.litert_version.empty()) {
    if (!options.allow_untested_version) {
      *error = "the option litert_version (the interpreter runtime's version, e.g. \"2.3.0\") is required: "
               "the delegate reads the interpreter's internal structs and must know their layout";
      return nullptr;
    }
  } else if (!ParseLiteRtVersion(options.litert_version, &major, &minor)) {
    *error = "litert_version '" + options.litert_version + "' is not a version number";
    return nullptr;
  } else if (!IsTestedLiteRtVersion(options.litert_version) && !options.allow_untested_version) {
    *error = "runtime version " + options.litert_version + " is untested (tested: " +
             std::to_string(kTestedLiteRtMajor) + "." + std::to_string(kTestedLiteRtMinor) +
             ".x); the delegate reads the interpreter's internal structs, whose layout may differ. "
             "Pass allow_untested_version=true to try anyway";
    return nullptr;
  }
  auto st = std::make_unique<DelegateState>();
  st->options = options;
  st->delegate.data_ = st.get();
  st->delegate.Prepare = &DelegatePrepare;
  // Without AllowDynamicTensors TFLite prepares the whole original graph before delegating, and
  // the unresolved CUSTOM ops fail there. Our kernels compute their output shapes in prepare.
  st->delegate.flags = kTfLiteDelegateFlagsAllowDynamicTensors;
  TfLiteDelegate* d = &st->delegate;
  st.release();
  return d;
}

void DestroyDelegate(TfLiteDelegate* delegate) {
  if (delegate) delete StateOf(delegate);
}

std::string DelegateReport(const TfLiteDelegate* delegate) {
  DelegateState* st = StateOf(delegate);
  std::lock_guard<std::mutex> l(st->mu);
  std::ostringstream os;
  os << "{\"litert_version\": \"" << JsonEscape(st->options.litert_version) << "\", \"numerics_requested\": \""
     << JsonEscape(st->options.numerics) << "\", \"numerics\": \"" << st->numerics_in_use
     << "\", \"num_threads\": " << (st->pool ? st->pool->threads() : 0) << ", \"nodes\": [";
  for (size_t i = 0; i < st->nodes.size(); ++i) {
    const NodeStats& n = *st->nodes[i];
    os << (i ? ", " : "") << "{\"op\": \"" << JsonEscape(n.op) << "\", \"node_index\": " << n.node
       << ", \"detail\": \"" << JsonEscape(n.detail) << "\", \"calls\": " << n.calls
       << ", \"total_ms\": " << n.total_ms << "}";
  }
  os << "]}";
  return os.str();
}

}  // namespace keras_csp::runtime

TfLiteDelegate* tflite_plugin_create_delegate(char** keys, char** values, int n,
                                              TfLitePluginErrorHandler report_error) {
  std::string err;
  try {
    std::vector<std::pair<std::string, std::string>> kv;
    if (n < 0 || n > 64) err = "implausible option count " + std::to_string(n);
    for (int i = 0; err.empty() && i < n; ++i) {
      if (!keys || !values || !keys[i] || !values[i]) {
        err = "null option key or value";
        break;
      }
      kv.emplace_back(keys[i], values[i]);
    }
    keras_csp::runtime::DelegateOptions opt;
    if (err.empty()) err = keras_csp::runtime::ParseDelegateOptions(kv, &opt);
    if (err.empty()) {
      TfLiteDelegate* d = keras_csp::runtime::CreateDelegate(opt, &err);
      if (d) return d;
    }
  } catch (const std::exception& e) {
    err = e.what();
  }
  if (report_error) report_error(("keras-csp delegate: " + err).c_str());
  return nullptr;
}

void tflite_plugin_destroy_delegate(TfLiteDelegate* delegate) { keras_csp::runtime::DestroyDelegate(delegate); }

size_t keras_csp_delegate_report(const TfLiteDelegate* delegate, char* buf, size_t capacity) {
  if (!delegate) return 0;
  std::string r = keras_csp::runtime::DelegateReport(delegate);
  if (buf && capacity > r.size()) std::memcpy(buf, r.c_str(), r.size() + 1);
  return r.size() + 1;
}
