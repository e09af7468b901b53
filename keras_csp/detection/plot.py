"""Draw detections on scenes (matplotlib, Agg)."""
import numpy as np


def plot_detections(scenes, detections, path, columns=4):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = len(detections)
    rows = -(-n // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    size = np.array(scenes.images.shape[1:3] * 2, "float32")
    for i, (ax, det) in enumerate(zip(axes.ravel(), detections)):
        ax.imshow(scenes.images[i])
        for box in scenes.boxes[i] * size:
            ax.add_patch(plt.Rectangle((box[1], box[0]), box[3] - box[1], box[2] - box[0], fill=False, ec="lime", lw=1))
        for box, score, cls in zip(det["boxes"] * size, det["scores"], det["classes"]):
            ax.add_patch(plt.Rectangle((box[1], box[0]), box[3] - box[1], box[2] - box[0], fill=False, ec="red", lw=1))
            ax.text(box[1], box[0] - 1, f"{cls}:{score:.2f}", color="yellow", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
