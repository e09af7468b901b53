// Helpers shared by the app's JNI entry points (jni_bridge.cc, delegate_jni.cc).
#pragma once

#include <jni.h>

#include <string>

namespace keras_csp::jni {

// A Java string as UTF-8 ("" for null).
inline std::string FromJava(JNIEnv* env, jstring s) {
  if (s == nullptr) return "";
  const char* chars = env->GetStringUTFChars(s, nullptr);
  std::string out = chars ? chars : "";
  if (chars) env->ReleaseStringUTFChars(s, chars);
  return out;
}

}  // namespace keras_csp::jni
