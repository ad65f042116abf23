"""Your own images, from training to energy: a folder with train/<class>/ and val/<class>/ (or
test/<class>/), any number of classes, grey or RGB.

    .venv/bin/python examples/your_image_folder.py DIR [--img-size 16] [--epochs 20] [--steps 16] [--levels 4]
"""
import argparse

import mstdeploy

ap = argparse.ArgumentParser()
ap.add_argument("folder")
ap.add_argument("--img-size", type=int, default=16)
ap.add_argument("--epochs", type=int, default=20)
ap.add_argument("--steps", type=int, default=16)
ap.add_argument("--levels", type=int, default=4, help="graded spikes: payloads 0..M (1: binary)")
ap.add_argument("--out", default="runs/your-folder")
a = ap.parse_args()

model, figures = mstdeploy.train("vgg-tiny", "folder", data=a.folder, img_size=a.img_size, epochs=a.epochs,
                                 batch_size=16, levels=a.levels)
ann = mstdeploy.evaluate(model, "folder", data=a.folder)
print(f"ANN: {100 * ann:.2f}% on the folder's test images")
graph = mstdeploy.export(model, spike_levels=a.levels)
run = mstdeploy.simulate(graph, "folder", a.steps, data=a.folder)
print("SNN: " + ", ".join(f"T={t} {100 * acc:.2f}%" for t, acc in run.accuracy.items() if t & (t - 1) == 0))
report = mstdeploy.energy(graph, "folder", steps=a.steps, data=a.folder, ann=model, out=a.out)
best = report["runs"][0]["within_tolerance"]
print("within 0.5 point of the ANN: " + (f"T={best['steps']}, x{best['vs_ann']['45nm-fp32']:.2f} of the fp32 ANN's "
                                        f"energy" if best else "not at these steps") + f"; report and plots in {a.out}")
