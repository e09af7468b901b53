"""TFLite image-classifier metadata (tflite-support metadata writers), so the Android Task Library's
ImageClassifier can load the file: model name/description, input normalization (mean/std), an
associated labels file and input/output tensor descriptions.

Note: `import tflite_support` itself fails with this environment's TensorFlow; the metadata writer
modules under `tensorflow_lite_support.metadata.python` are imported directly instead.

Normalization: the Task Library feeds float models (pixel - mean) / std; for int8/uint8 inputs it
passes pixels through, and the input tensor's quantization (scale 1/255 for our [0, 1] models) does the
same scaling, so the recorded mean/std are [0] / [255] either way.
"""
import importlib.util
import json
import os
import tempfile

METADATA_MISSING = ("tflite-support is not installed; to add metadata: "
                    "pip install --no-deps tflite-support==0.4.4 (and apt install libusb-1.0-0)")


def metadata_available():
    """tflite-support's metadata writers are importable (an optional dependency: it pins protobuf<4,
    so it installs with --no-deps, outside keras-csp's own requirements)."""
    try:
        return importlib.util.find_spec("tensorflow_lite_support.metadata.python.metadata_writers") is not None
    except ImportError:
        return False


def _writers():
    from tensorflow_lite_support.metadata.python.metadata_writers import image_classifier, metadata_info
    from tensorflow_lite_support.metadata.python.metadata_writers import writer_utils
    return image_classifier, metadata_info, writer_utils


def _color_space_rgb():
    from tensorflow_lite_support.metadata import metadata_schema_py_generated as fb
    return fb.ColorSpaceType.RGB


def add_image_classifier_metadata(model, labels, name="keras-csp image classifier", description=None,
                                  mean=(0.0,), std=(255.0,), version="1", author="keras-csp",
                                  licenses="Apache-2.0"):
    """Return the .tflite bytes of `model` (bytes or path) with image-classifier metadata and `labels`."""
    image_classifier, md, writer_utils = _writers()
    buf = model if isinstance(model, (bytes, bytearray)) else open(model, "rb").read()
    labels = [str(x) for x in labels]
    if not labels:
        raise ValueError("labels must not be empty")
    in_types = writer_utils.get_input_tensor_types(bytearray(buf))
    out_types = writer_utils.get_output_tensor_types(bytearray(buf))
    with tempfile.TemporaryDirectory() as tmp:
        label_path = os.path.join(tmp, "labels.txt")
        with open(label_path, "w") as f:
            f.write("\n".join(labels) + "\n")
        general = md.GeneralMd(name=name, version=version, author=author, licenses=licenses,
                               description=description or (
                                   f"Classifies an image into {len(labels)} classes (int8 quantized keras-csp "
                                   f"CSP network)."))
        inp = md.InputImageTensorMd(
            name="image", description="Input image; pixels scaled to [0, 1] as (pixel - mean) / std.",
            norm_mean=[float(m) for m in mean], norm_std=[float(s) for s in std],
            color_space_type=_color_space_rgb(), tensor_type=in_types[0])
        out = md.ClassificationTensorMd(
            name="probability", description=f"Probabilities of the {len(labels)} labels.",
            label_files=[md.LabelFileMd(file_path=label_path)], tensor_type=out_types[0])
        writer = image_classifier.MetadataWriter.create_from_metadata_info(
            bytearray(buf), general_md=general, input_md=inp, output_md=out)
        return bytes(writer.populate())


def read_metadata(model):
    """(metadata dict parsed from its JSON, {associated file name: bytes}) of a .tflite (path or bytes)."""
    from tensorflow_lite_support.metadata.python import metadata
    buf = model if isinstance(model, (bytes, bytearray)) else open(model, "rb").read()
    displayer = metadata.MetadataDisplayer.with_model_buffer(bytearray(buf))
    files = {n: displayer.get_associated_file_buffer(n) for n in displayer.get_packed_associated_file_list()}
    return json.loads(displayer.get_metadata_json()), files


def read_labels(model):
    """The labels stored in the metadata's associated labels file."""
    _, files = read_metadata(model)
    for name, data in files.items():
        if name.endswith(".txt"):
            return [x for x in data.decode().splitlines() if x]
    raise ValueError("no labels file in the TFLite metadata")
