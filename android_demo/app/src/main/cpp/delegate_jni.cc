// JNI entry points of dev.kerascsp.delegate.KerasCspDelegate (libkeras_csp_delegate.so): the
// delegate of kernels/runtime/delegate.cc for LiteRT's Java Interpreter
// (`Interpreter.Options().addDelegate(KerasCspDelegate())`). Bad options or an untested LiteRT
// version throw IllegalArgumentException with the delegate's message; nothing crashes the app.
#include <jni.h>

#include <string>

#include "delegate.h"
#include "jni_util.h"

using keras_csp::jni::FromJava;

extern "C" JNIEXPORT jlong JNICALL Java_dev_kerascsp_delegate_KerasCspDelegate_nativeCreate(
    JNIEnv* env, jclass /*cls*/, jstring numerics, jint num_threads, jstring litert_version) {
  keras_csp::runtime::DelegateOptions options;
  std::string error = keras_csp::runtime::ParseDelegateOptions(
      {{"numerics", FromJava(env, numerics)}, {"num_threads", std::to_string(num_threads)},
       {"litert_version", FromJava(env, litert_version)}},
      &options);
  TfLiteDelegate* delegate = nullptr;
  if (error.empty()) delegate = keras_csp::runtime::CreateDelegate(options, &error);
  if (!delegate) {
    jclass iae = env->FindClass("java/lang/IllegalArgumentException");
    if (iae) env->ThrowNew(iae, ("keras-csp delegate: " + error).c_str());
    return 0;
  }
  return reinterpret_cast<jlong>(delegate);
}

extern "C" JNIEXPORT void JNICALL Java_dev_kerascsp_delegate_KerasCspDelegate_nativeDestroy(
    JNIEnv* /*env*/, jclass /*cls*/, jlong handle) {
  keras_csp::runtime::DestroyDelegate(reinterpret_cast<TfLiteDelegate*>(handle));
}

extern "C" JNIEXPORT jstring JNICALL Java_dev_kerascsp_delegate_KerasCspDelegate_nativeReport(
    JNIEnv* env, jclass /*cls*/, jlong handle) {
  std::string r = handle ? keras_csp::runtime::DelegateReport(reinterpret_cast<TfLiteDelegate*>(handle)) : "{}";
  return env->NewStringUTF(r.c_str());
}
