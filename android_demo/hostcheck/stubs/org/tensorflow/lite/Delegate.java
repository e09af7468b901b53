// Compile-only stand-in for LiteRT's org.tensorflow.lite.Delegate (the Maven AAR is not
// available offline): the same two members the app's code uses. Not shipped, not run on phones.
package org.tensorflow.lite;

public interface Delegate extends java.io.Closeable {
  long getNativeHandle();

  @Override
  default void close() {}
}
