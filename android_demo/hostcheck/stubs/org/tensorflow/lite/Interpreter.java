// Compile-only stand-in for LiteRT's org.tensorflow.lite.Interpreter: the members StockBench uses,
// with LiteRT's signatures. Running it throws: it only lets the app's Kotlin compile here.
package org.tensorflow.lite;

public final class Interpreter implements AutoCloseable {
  public static class Options {
    public Options setNumThreads(int numThreads) { return this; }
    public Options addDelegate(Delegate delegate) { return this; }
  }

  public Interpreter(java.io.File modelFile, Options options) {
    throw new UnsupportedOperationException("compile-only stub of LiteRT's Interpreter");
  }

  public void run(Object input, Object output) {}
  public int getInputTensorCount() { return 0; }
  public Tensor getInputTensor(int index) { return null; }
  public Tensor getOutputTensor(int index) { return null; }
  @Override public void close() {}
}
