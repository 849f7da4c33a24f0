"""Centred FFT helpers and MaskedFourier against NumPy references; shifts; validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rim_monai.operators import (
    MaskedFourier,
    birdcage_maps,
    channels_to_complex,
    coil_combine,
    complex_to_channels,
    fft2c,
    ifft2c,
    random_mask,
    rss,
)


def _crandn(*shape, seed=0, dtype=torch.complex128):
    g = torch.Generator().manual_seed(seed)
    return torch.complex(torch.randn(shape, generator=g, dtype=torch.float64), torch.randn(shape, generator=g, dtype=torch.float64)).to(dtype)


def _np_fft2c(x: np.ndarray) -> np.ndarray:
    axes = (-2, -1)
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=axes), axes=axes, norm="ortho"), axes=axes)


@pytest.mark.parametrize("shape", [(8, 8), (7, 10), (2, 3, 9, 5)])
def test_fft2c_matches_numpy_and_is_unitary(shape):
    x = _crandn(*shape)
    k = fft2c(x)
    np.testing.assert_allclose(k.numpy(), _np_fft2c(x.numpy()), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ifft2c(k), x)
    torch.testing.assert_close(torch.linalg.vector_norm(k), torch.linalg.vector_norm(x))


def _np_ifft2c(k: np.ndarray) -> np.ndarray:
    axes = (-2, -1)
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=axes), axes=axes, norm="ortho"), axes=axes)


# even sizes take the checkerboard form (H/2 + W/2 even and odd), the others the fftshift form
@pytest.mark.parametrize("shape", [(4, 6), (6, 6), (2, 2, 10, 4), (6, 7), (5, 8), (3, 5)])
@pytest.mark.parametrize("dtype,tol", [(torch.complex128, 1e-12), (torch.complex64, 2e-6), (torch.float64, 1e-12)])
def test_fft2c_and_ifft2c_match_numpy_for_every_size_and_dtype(shape, dtype, tol):
    x = _crandn(*shape, seed=3)
    x = x.real.to(dtype) if not dtype.is_complex else x.to(dtype)
    reference = x.numpy().astype(np.complex128)
    np.testing.assert_allclose(fft2c(x).numpy(), _np_fft2c(reference), rtol=tol, atol=tol)
    np.testing.assert_allclose(ifft2c(x).numpy(), _np_ifft2c(reference), rtol=tol, atol=tol)


def test_fft2c_centre_convention():
    x = torch.zeros(6, 5, dtype=torch.complex128)
    x[3, 2] = 1  # the image centre (H // 2, W // 2) maps to a flat spectrum
    torch.testing.assert_close(fft2c(x), torch.full((6, 5), 1 / np.sqrt(30), dtype=torch.complex128))
    k = torch.zeros(6, 5, dtype=torch.complex128)
    k[3, 2] = 1  # the DC sample sits at the centre
    torch.testing.assert_close(ifft2c(k), torch.full((6, 5), 1 / np.sqrt(30), dtype=torch.complex128))


def test_single_coil_forward_and_adjoint_match_numpy():
    mask = random_mask((12, 16), 4, 0.125, seed=0)
    op = MaskedFourier(mask)
    x = _crandn(3, 1, 12, 16)
    expected = mask.numpy() * _np_fft2c(x.numpy())
    np.testing.assert_allclose(op(x).numpy(), expected, atol=1e-12)
    y = _crandn(3, 1, 12, 16, seed=1)
    back = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(mask.numpy() * y.numpy(), axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    np.testing.assert_allclose(op.adjoint(y).numpy(), back, atol=1e-12)
    assert op.domain_shape == op.range_shape == (12, 16)


def test_multi_coil_matches_formula_and_zeros_off_mask():
    sens = _crandn(4, 10, 12, seed=2)
    mask = random_mask((10, 12), 3, 0.17, seed=1)
    op = MaskedFourier(mask, sens)
    assert op.domain_shape == (1, 10, 12) and op.range_shape == (4, 10, 12)
    x = _crandn(2, 1, 10, 12, seed=3)
    k = op(x)
    np.testing.assert_allclose(k.numpy(), mask.numpy() * _np_fft2c(sens.numpy() * x.numpy()), atol=1e-12)
    assert bool((k[..., mask == 0] == 0).all())
    y = _crandn(2, 4, 10, 12, seed=4)
    expected = (sens.conj() * ifft2c(mask * y)).sum(dim=1, keepdim=True)
    torch.testing.assert_close(op.adjoint(y), expected)


def test_full_sampling_with_normalised_maps_is_identity():
    op = MaskedFourier(torch.ones(16, 12), birdcage_maps(6, (16, 12), dtype=torch.complex128))
    x = _crandn(2, 1, 16, 12)
    torch.testing.assert_close(op.normal(x), x)
    assert op.opnorm() == pytest.approx(1.0, rel=1e-3)


def test_per_sample_masks_and_maps_apply_per_sample():
    masks = torch.stack([random_mask((8, 10), 4, 0.2, seed=s) for s in range(3)])[:, None]
    sens = _crandn(3, 2, 8, 10, seed=5)
    op = MaskedFourier(masks, sens)
    x = _crandn(3, 1, 8, 10, seed=6)
    k = op(x)
    for b in range(3):
        single = MaskedFourier(masks[b, 0], sens[b])
        torch.testing.assert_close(k[b], single(x[b : b + 1])[0])


@pytest.mark.parametrize("shift", [(2, -3), (0, 5), (-1, 0)])
def test_integer_shift_is_a_roll(shift):
    op = MaskedFourier(torch.ones(9, 12), shift=shift)
    x = _crandn(2, 1, 9, 12)
    torch.testing.assert_close(ifft2c(op(x)), torch.roll(x, shifts=shift, dims=(-2, -1)))


def test_half_pixel_shifts_compose():
    x = _crandn(1, 1, 8, 8)
    half = MaskedFourier(torch.ones(8, 8), shift=(0.5, -0.5))
    whole = MaskedFourier(torch.ones(8, 8), shift=(1.0, -1.0))
    torch.testing.assert_close(half(ifft2c(half(x))), whole(x))


def test_learnable_shift_receives_exact_gradient():
    sens = birdcage_maps(3, (10, 10), dtype=torch.complex128)
    op = MaskedFourier(random_mask((10, 10), 2, 0.3, seed=0), sens, shift=(0.3, -0.2), learnable_shift=True).double()
    assert isinstance(op.shift, torch.nn.Parameter) and op.native_autograd
    x = _crandn(2, 1, 10, 10)
    target = _crandn(2, 3, 10, 10, seed=1)

    def loss(shift):
        with torch.no_grad():
            op.shift.copy_(shift)
            return float((op(x) - target).abs().pow(2).sum())

    op.zero_grad()
    (op(x) - target).abs().pow(2).sum().backward()
    grad = op.shift.grad.clone()
    base = op.shift.detach().clone()
    eps = 1e-6
    numeric = torch.tensor([(loss(base + eps * e) - loss(base - eps * e)) / (2 * eps) for e in torch.eye(2, dtype=torch.float64)], dtype=torch.float64)
    torch.testing.assert_close(grad, numeric, rtol=1e-5, atol=1e-7)


def test_shift_is_recovered_by_gradient_descent():
    x = _crandn(1, 1, 16, 16)
    mask = random_mask((16, 16), 2, 0.25, seed=3)
    measured = MaskedFourier(mask, shift=(0.7, -0.4))(x)
    op = MaskedFourier(mask, learnable_shift=True).double()
    optimiser = torch.optim.Adam(op.parameters(), lr=0.05)
    for _ in range(150):
        optimiser.zero_grad()
        (op(x) - measured).abs().pow(2).sum().backward()
        optimiser.step()
    torch.testing.assert_close(op.shift.detach(), torch.tensor([0.7, -0.4], dtype=torch.float64), atol=1e-3, rtol=0)


def test_operator_moves_with_to_and_keeps_float64():
    op = MaskedFourier(random_mask((8, 8), 2, 0.25, seed=0), _crandn(2, 8, 8, dtype=torch.complex64), shift=(0.5, 0))
    x = _crandn(1, 1, 8, 8, dtype=torch.complex128)
    assert op(x).dtype == torch.complex128
    assert op(x.to(torch.complex64)).dtype == torch.complex64


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(mask=torch.ones(3, 8, 8)), r"mask: expected shape \(H, W\)"),
        (dict(mask=torch.ones(8, 8, dtype=torch.complex64)), r"mask: expected a real"),
        (dict(mask=torch.ones(1, 8)), r"mask: .* broadcastable .* pass shape"),
        (dict(mask=torch.ones(8, 8), sens=torch.ones(2, 8, 8)), r"sens: expected a complex"),
        (dict(mask=torch.ones(8, 9), sens=torch.ones(2, 8, 8, dtype=torch.complex64)), r"mask: dimension 1 has size 9"),
        (dict(mask=torch.ones(3, 1, 8, 8), sens=torch.ones(2, 2, 8, 8, dtype=torch.complex64)), r"mask: batch size 3 .* sens"),
        (dict(mask=torch.ones(2, 3, 8, 8), sens=torch.ones(2, 2, 8, 8, dtype=torch.complex64)), r"mask: expected 1 or 2"),
        (dict(mask=torch.ones(2, 2, 8, 8)), r"mask: expected 1 in dimension 1"),
        (dict(mask=torch.ones(8, 8), shift=(1.0, 2.0, 3.0)), r"shift: expected shape"),
        (dict(mask=torch.ones(3, 1, 8, 8), shift=torch.zeros(2, 2)), r"shift: batch size 2 .* mask"),
        (dict(mask=torch.ones(8, 8), shape=(8,)), r"shape: expected \(H, W\)"),
        (dict(mask=torch.ones(8, 8), sens=torch.full((2, 8, 8), float("nan"), dtype=torch.complex64)), r"sens: contains NaN"),
    ],
)
def test_bad_construction_names_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MaskedFourier(**kwargs)


def test_broadcast_mask_with_shape():
    line = random_mask((1, 12), 3, 0.17, seed=0)
    op = MaskedFourier(line, shape=(6, 12))
    assert op.domain_shape == (6, 12)
    torch.testing.assert_close(op(torch.ones(6, 12, dtype=torch.complex64)), line * fft2c(torch.ones(6, 12, dtype=torch.complex64)))


def test_complex_channel_helpers_round_trip():
    x = _crandn(2, 3, 4, 5, dtype=torch.complex64)
    channels = complex_to_channels(x)
    assert channels.shape == (2, 6, 4, 5) and channels.dtype == torch.float32
    torch.testing.assert_close(channels[:, 2], x[:, 1].real)
    torch.testing.assert_close(channels[:, 3], x[:, 1].imag)
    torch.testing.assert_close(channels_to_complex(channels), x)
    with pytest.raises(ValueError, match="x: expected a complex"):
        complex_to_channels(x.real)
    with pytest.raises(ValueError, match="even number of channels"):
        channels_to_complex(channels[:, :5])


def test_rss_and_coil_combine():
    coil_images = _crandn(2, 4, 6, 6)
    np.testing.assert_allclose(rss(coil_images).numpy(), np.sqrt((np.abs(coil_images.numpy()) ** 2).sum(1)), rtol=1e-12)
    sens = birdcage_maps(4, (6, 6), dtype=torch.complex128)
    x = _crandn(2, 1, 6, 6, seed=1)
    torch.testing.assert_close(coil_combine(sens * x, sens), x)


def test_replace_new_coil_maps_keeps_mask_and_estimated_shift():
    """``replace(sens=...)`` (what R&R+ uses to re-estimate coil maps) equals building the operator by hand."""
    mask = random_mask((12, 10), 4, 0.2, seed=3)
    op = MaskedFourier(mask, birdcage_maps(4, (12, 10)), shift=(0.5, -0.25), learnable_shift=True)
    with torch.no_grad():
        op.shift.add_(torch.tensor([0.125, 0.25]))  # as if estimated
    sens = birdcage_maps(6, (12, 10), radius=3.0)
    new = op.replace(sens=sens)
    by_hand = MaskedFourier(mask, sens, shift=op.shift.detach().clone(), shape=(12, 10), learnable_shift=True)
    assert isinstance(new.shift, torch.nn.Parameter) and new.range_shape == (6, 12, 10)
    x = _crandn(2, 1, 12, 10, dtype=torch.complex64)
    assert torch.equal(new(x), by_hand(x))
    assert op.range_shape == (4, 12, 10)  # the original is untouched


def test_opnorm_starts_from_a_flat_image_where_the_mask_samples_the_centre():
    """MaskedFourier.opnorm: where the mask samples the k-space centre the power iteration starts near the top
    singular vectors (a flat image) and is within 1e-3 of the converged norm after 10 iterations, where the random
    start is 1 % off; a mask without its 3 x 3 centre keeps the random start (the same estimate as the base class)."""
    from rim_monai.operators.base import LinearOperator

    class RandomStart(MaskedFourier):
        _power_start = LinearOperator._power_start

    n = 64
    maps = birdcage_maps(8, (n, n), dtype=torch.complex64)
    mask = torch.zeros(n, n)
    mask[:, ::4] = 1
    mask[:, n // 2 - 4 : n // 2 + 4] = 1
    converged = RandomStart(mask, maps).opnorm(iterations=3000, tol=0.0)
    assert MaskedFourier(mask, maps).opnorm(iterations=10) == pytest.approx(converged, abs=1e-3)
    assert RandomStart(mask, maps).opnorm(iterations=10) < converged - 5e-3
    assert MaskedFourier(mask, maps).opnorm() == pytest.approx(converged, abs=3e-4)
    off_centre = torch.roll(mask, n // 2, dims=-1)  # samples the DC column but not its neighbours
    assert MaskedFourier(off_centre, maps).opnorm() == RandomStart(off_centre, maps).opnorm()
