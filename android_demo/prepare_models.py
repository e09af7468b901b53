"""Write the app's bundled int8 models into app/src/main/assets/models/.

    python android_demo/prepare_models.py            # tiny 32x32 models (what the repository ships)
    python android_demo/prepare_models.py --full     # CSPDenseNet-121 / DenseNet-121 at 224x224 (~8 MB each)

For each of CSPDenseNet and DenseNet: an int8 PTQ export with untrained weights (latency does not
depend on the weights) and its fused rewrite (`keras_csp.tflite.fuse`, verified bit-exact before it
is written). File names are the ones BenchReport.kt lists.
"""
import argparse
import os
import shutil
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ASSETS = os.path.join(HERE, "app", "src", "main", "assets", "models")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="121-layer models at 224x224 instead of the tiny ones")
    parser.add_argument("--out", default=ASSETS)
    args = parser.parse_args(argv)

    from keras_csp.benchmark import export_ptq_int8
    from keras_csp.tflite import fuse

    pairs = ({"cspdensenet": "cspdensenet121", "densenet": "densenet121"} if args.full
             else {"cspdensenet": "cspdensenet_tiny", "densenet": "densenet_tiny"})
    size = 224 if args.full else 32
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for asset, zoo_name in pairs.items():
            plain = os.path.join(tmp, f"{asset}_int8.tflite")
            export_ptq_int8(zoo_name, plain, input_size=size)
            fused = os.path.join(tmp, f"{asset}_int8_fused.tflite")
            report = fuse(plain, fused)
            for path in (plain, fused):
                shutil.copy(path, os.path.join(args.out, os.path.basename(path)))
            print(f"{zoo_name}: {len(report.get('fused', []))} fused ops -> {args.out}")


if __name__ == "__main__":
    main()
