// JNI entry points of the Android demo: dev.kerascsp.demo.NativeBench.
// The app passes the LiteRT library (the soname "libLiteRt.so" packaged from LiteRT's Maven AAR,
// or a full path) and a model file copied from assets; it gets the benchmark JSON back, or a
// JSON object {"error": "..."}: native failures never crash the app.
#include <jni.h>

#include <string>

#include "bench_core.h"
#include "jni_util.h"

namespace {

using keras_csp::jni::FromJava;

std::string ErrorJson(const std::string& message) {
  std::string escaped;
  for (char c : message) {
    if (c == '"' || c == '\\') escaped += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) escaped += c;
  }
  return "{\"error\":\"" + escaped + "\"}";
}

}  // namespace

extern "C" JNIEXPORT jstring JNICALL Java_dev_kerascsp_demo_NativeBench_runBenchmark(
    JNIEnv* env, jclass /*cls*/, jstring litert_library, jstring litert_version, jstring model_path,
    jint num_threads, jint runs, jint warmup, jboolean custom_ops) {
  keras_csp::bench::BenchConfig config;
  config.litert_library = FromJava(env, litert_library);
  config.litert_version = FromJava(env, litert_version);
  config.model_path = FromJava(env, model_path);
  config.num_threads = num_threads;
  config.runs = runs;
  config.warmup = warmup;
  config.custom_ops = custom_ops == JNI_TRUE;
  keras_csp::bench::BenchResult result;
  std::string error;
  std::string json = keras_csp::bench::RunBenchmark(config, &result, &error) ? keras_csp::bench::ToJson(result)
                                                                              : ErrorJson(error);
  return env->NewStringUTF(json.c_str());
}
