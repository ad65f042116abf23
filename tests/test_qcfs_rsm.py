import pytest
import torch

from mstdeploy.errors import UserError
from mstdeploy.models.qcfs import QCFS
from mstdeploy.ir.ratio import check_ratio
from mstdeploy.models.rsm import RandomSpikeMask
from mstdeploy.models.train import param_groups


def reference_qcfs(z, lam, L):
    return (lam / L) * torch.clamp(torch.floor(z * L / lam + 0.5), 0, L)


@pytest.mark.parametrize("L,lam", [(16, 2.0), (4, 0.7), (1, 1.3)])
def test_qcfs_matches_formula(L, lam):
    act = QCFS(L, lam)
    z = torch.linspace(-1, 3 * lam, 10001, dtype=torch.float64)
    with torch.no_grad():
        out = act.double()(z)
    ref = reference_qcfs(z, act.lam.detach(), L)
    # values agree except where z*L/lam + 0.5 sits on an integer up to rounding
    assert (out - ref).abs().gt(1e-9).float().mean() < 1e-3
    assert set(torch.unique(torch.round(out / (lam / L))).tolist()) <= set(range(L + 1))


def test_qcfs_straight_through_gradient_and_lam_gradient():
    act = QCFS(16, 2.0)
    z = torch.tensor([-0.5, 0.3, 1.1, 2.5], requires_grad=True)
    act(z).sum().backward()
    assert z.grad.tolist() == [0.0, 1.0, 1.0, 0.0]   # identity inside [0, lam], zero outside
    assert act.lam.grad is not None and act.lam.grad != 0


def test_qcfs_threshold_has_no_weight_decay():
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), QCFS())
    decay, no_decay = param_groups(model, 0.05)
    assert any(p is model[1].lam for p in no_decay["params"])
    assert not any(p is model[1].lam for p in decay["params"])
    assert any(p is model[0].weight for p in decay["params"])


def test_rsm_keep_probability_no_rescale_and_active_in_eval():
    m = RandomSpikeMask(0.75).eval()
    x = torch.ones(200_000)
    y = m(x)
    assert set(torch.unique(y).tolist()) <= {0.0, 1.0}       # no 1/(1-p) rescaling
    assert abs(y.mean().item() - 0.25) < 0.005
    assert not torch.equal(m(x), y)                          # drawn anew at every call
    assert torch.equal(RandomSpikeMask(0.0)(x), x)


@pytest.mark.parametrize("bad", [1.0, 1.5, -0.1, "x"])
def test_ratio_outside_unit_interval_is_rejected(bad):
    with pytest.raises(UserError, match=r"\[0, 1\)"):
        check_ratio(bad)
