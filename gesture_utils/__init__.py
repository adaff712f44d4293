"""gesture_utils: the reusable code behind the gesture-recognition notebook series.

One module per stage of the series (see README for the notebook that teaches each):

======================  ==========================================  ========
module                  what it holds                               notebook
======================  ==========================================  ========
``config``              every default, as dataclasses               all
``errors``              ``GestureError``, the one error users see   all
``paths`` / ``runtime`` repo-relative paths; seeding, device, setup all
``generation``          synthetic gesture clips + manifest          01
``video``               reading clips (files or frame folders)      01
``datasets``            torch Dataset, splits, direction-aware flip 01
``attention``           attention from scratch, maps, rollout       02
``models``              ViT per frame + temporal head               03
``training``            training loop, checkpoints                  03
``export``              ONNX export (clip + streaming), INT8        04
``inference``           torch-free ONNX classifier                  04
``evaluation``          metrics, confusion matrices; event metrics  05, 06
``benchmark``           latency measurement                         05
``stream``              sources, ring, decision rule, recogniser    06
``demo``                browser camera widget, live demo, recorder  06
======================  ==========================================  ========

Importing the package is cheap: heavy dependencies load with the stage that needs them.
"""

from gesture_utils.errors import GestureError

__version__ = "0.8.0"
__all__ = ["GestureError", "__version__"]
