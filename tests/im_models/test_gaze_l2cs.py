"""L2CS-Net gaze. No gaze weights can be obtained here (reference/test-assets.md: "a gaze-angle network ... not
found anywhere"), so these tests build the network in torch with RANDOM weights, export it to ONNX and check the
family's pre-processing, head assignment and soft-argmax decoding against a hand computation on the raw outputs.
Most tests use a small ResNet (Bottleneck blocks, one per stage, 16-channel stem) with the real L2CS heads; one test
builds the real ResNet-50 architecture of ``L2CSNet_gaze360.pkl`` and runs it end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from im_core import Gaze, to_images
from im_core.errors import CorruptedModelPackageError, DependencyModelError, InvalidParameterError
from im_core.testing import local_context
from im_models.faces._blazeface import BlazeFaceDetector
from im_models.gaze._l2cs import L2CSGaze, binned_angles
from im_models.gaze._l2cs_torch import build_l2cs_network
from testlib.gaze import export as _export
from testlib.gaze import small_network

torch = pytest.importorskip("torch")

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def test_binned_angles_by_hand() -> None:
    logits = np.full((4, 90), -50.0)
    logits[0, 45] = 50.0  # all mass on bin 45: 45·4 − 180 = 0°
    logits[1, [45, 46]] = 50.0  # half on 45, half on 46: 45.5·4 − 180 = 2°
    logits[2] = 0.0  # uniform: mean index 44.5 → −2°
    logits[3, 0] = 50.0  # bin 0: −180°
    np.testing.assert_allclose(binned_angles(logits, 4.0, -180.0), np.deg2rad([0.0, 2.0, -2.0, -180.0]), atol=1e-6)
    # MPIIGaze layout: 28 bins of 3°, bin 0 at −42°
    mpii = np.full((1, 28), -50.0)
    mpii[0, 14] = 50.0
    np.testing.assert_allclose(binned_angles(mpii, 3.0, -42.0), np.deg2rad([0.0]), atol=1e-6)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path]:
    return small_network(tmp_path_factory.mktemp("l2cs"))


def _by_hand(net: object, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """yaw, pitch in radians from the torch module's raw heads: softmax, Σ p·i·4 − 180, degrees → radians."""
    with torch.no_grad():
        heads = net(torch.from_numpy(tensor))
    out = []
    for logits in heads:
        p = torch.softmax(logits.double(), dim=1).numpy()
        out.append(np.deg2rad((p * np.arange(90)).sum(1) * 4 - 180))
    return out[0], out[1]


def test_whole_image_is_one_face_and_decoding_matches_hand_computation(small, asset) -> None:
    import cv2

    net, path = small
    model = L2CSGaze.from_package(local_context(path, architecture="l2cs-net", task="gaze-estimation"))
    bgr = cv2.imread(str(asset("images/astronaut.png")))
    crops = [bgr[60:180, 170:280], bgr, np.ascontiguousarray(bgr[:, ::-1])]
    results = model(crops)
    assert all(isinstance(r, Gaze) and len(r) == 1 and r.faces is None for r in results)
    # the family's input tensor: stretched to 448², RGB, /255, ImageNet mean/std (checked on the first crop)
    prepared = model.pre_process(to_images(crops))
    assert prepared.tensor.shape == (3, 3, 448, 448)
    rgb = cv2.resize(crops[0], (448, 448), interpolation=cv2.INTER_LINEAR)[:, :, ::-1].astype(np.float32) / 255
    np.testing.assert_allclose(prepared.tensor[0], ((rgb - MEAN) / STD).transpose(2, 0, 1), atol=1e-5)
    yaw, pitch = _by_hand(net, prepared.tensor)
    got_yaw = np.concatenate([r.yaw for r in results])
    got_pitch = np.concatenate([r.pitch for r in results])
    np.testing.assert_allclose(got_yaw, yaw, atol=2e-4)  # output 0 = fc_yaw_gaze
    np.testing.assert_allclose(got_pitch, pitch, atol=2e-4)
    assert np.abs(np.rad2deg(got_yaw) + 2).max() > 1  # not the uniform-softmax answer
    assert model.metadata.task == "gaze-estimation"


def test_outputs_named_pitch_and_yaw_are_bound_by_name(small, tmp_path: Path) -> None:
    net, _ = small
    path = _export(net, tmp_path / "named.onnx", names=("gaze_pitch", "gaze_yaw"))  # head 0 exported as "pitch"
    named = L2CSGaze.from_package(local_context(path, architecture="l2cs", task="gaze-estimation"))
    image = np.full((64, 48, 3), 120, np.uint8)
    image[10:30, 5:20] = 250
    g = named(image)
    prepared = named.pre_process(to_images(image))
    head0, head1 = _by_hand(net, prepared.tensor)
    np.testing.assert_allclose(g.pitch, head0, atol=2e-4)
    np.testing.assert_allclose(g.yaw, head1, atol=2e-4)
    swapped = L2CSGaze.from_package(
        local_context(path, architecture="l2cs", task="gaze-estimation", options={"output_order": ["yaw", "pitch"]})
    )
    np.testing.assert_allclose(swapped(image).yaw, head0, atol=2e-4)


def test_a_face_detector_dependency_points_to_the_face_gaze_pipeline(small, asset) -> None:
    """Finding faces is the face-gaze pipeline's job (tests/im_pipelines/test_face_gaze.py): the family refuses the
    dependency it used to run inside its pre-processing, and takes no face parameters."""
    _net, path = small
    detector = BlazeFaceDetector.from_package(
        local_context(asset("face/blazeface_front_128.onnx"), architecture="blazeface", task="object-detection")
    )
    ctx = local_context(path, architecture="l2cs-net", task="gaze-estimation", dependencies={"face_detector": detector})
    with pytest.raises(DependencyModelError, match=r"'face-gaze' pipeline.*AutoModelPipeline.from_pretrained"):
        L2CSGaze.from_package(ctx)
    plain = L2CSGaze.from_package(local_context(path, architecture="l2cs-net", task="gaze-estimation"))
    with pytest.raises(InvalidParameterError, match=r"L2CSGaze does not take parameter\(s\) 'face_margin'"):
        plain(np.zeros((64, 64, 3), np.uint8), face_margin=0.2)


def test_already_decoded_angle_outputs_and_bad_layouts(tmp_path: Path) -> None:
    class _Angles(torch.nn.Module):
        def forward(self, x: object) -> object:
            m = x.mean(dim=(2, 3))
            return m[:, :1], m[:, 1:2]

    path = _export(_Angles(), tmp_path / "angles.onnx", size=64)
    model = L2CSGaze.from_package(local_context(path, architecture="l2cs", task="gaze-estimation"))
    image = np.zeros((64, 64, 3), np.uint8)
    g = model(image, color_format="rgb")
    np.testing.assert_allclose(g.yaw, [-0.485 / 0.229], atol=1e-4)  # a black image, normalised channel 0
    np.testing.assert_allclose(g.pitch, [-0.456 / 0.224], atol=1e-4)

    class _Bins(torch.nn.Module):
        def forward(self, x: object) -> object:
            m = x.mean(dim=(2, 3))
            return m.repeat(1, 11)[:, :33], m.repeat(1, 11)[:, :33]

    bad = _export(_Bins(), tmp_path / "bins.onnx", size=64)
    with pytest.raises(CorruptedModelPackageError, match="33 bins"):
        L2CSGaze.from_package(local_context(bad, architecture="l2cs", task="gaze-estimation"))
    custom = L2CSGaze.from_package(
        local_context(
            bad, architecture="l2cs", task="gaze-estimation", options={"bin_width": 2.0, "angle_offset": -33.0}
        )
    )
    assert len(custom(image)) == 1


@pytest.mark.slow
def test_real_resnet50_architecture_exports_and_runs(tmp_path: Path) -> None:
    torch.manual_seed(1)
    net = build_l2cs_network()  # ResNet-50, 90 bins: the layout of L2CSNet_gaze360.pkl
    state = net.state_dict()
    assert state["fc_yaw_gaze.weight"].shape == (90, 2048) and state["fc_pitch_gaze.weight"].shape == (90, 2048)
    assert state["fc_finetune.weight"].shape == (3, 2051)
    assert "layer4.2.conv3.weight" in state and "layer3.5.bn3.running_var" in state
    assert sum(p.numel() for p in net.parameters()) == 23_883_008
    net.load_state_dict(state, strict=True)
    path = _export(net, tmp_path / "weights.onnx")
    model = L2CSGaze.from_package(local_context(path, architecture="l2cs-net", task="gaze-estimation"))
    image = np.random.default_rng(0).integers(0, 255, (120, 100, 3), dtype=np.uint8)
    g = model(image)
    yaw, pitch = _by_hand(net, model.pre_process(to_images(image)).tensor)
    np.testing.assert_allclose(g.yaw, yaw, atol=2e-4)
    np.testing.assert_allclose(g.pitch, pitch, atol=2e-4)
