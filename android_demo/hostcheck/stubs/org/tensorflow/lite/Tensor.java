// Compile-only stand-in for LiteRT's org.tensorflow.lite.Tensor (see Interpreter.java).
package org.tensorflow.lite;

public interface Tensor {
  int numBytes();
}
