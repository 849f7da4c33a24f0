"""Recurrent Inference Machine (Putzky & Welling 2017) and its GDN / FFN ablations."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

from rim_monai.classical.holdout import split_measurements
from rim_monai.networks.base import IterativeNetwork, renamed_argument
from rim_monai.networks.blocks import BoundaryConv2d, ConvGRUCell, same_padding
from rim_monai.networks.utils import (AUTOCAST_DTYPES, CG_INIT_ITERATIONS, DC_HOLDOUT, DC_HOLDOUT_ITERATIONS,
                                     DC_ITERATIONS, DC_LEARNED, DC_LEARNED_ITERATIONS, check_count,
                                     command_line_none_hint, data_consistency, from_channels,
                                     holdout_data_consistency, initial_estimate, mixed_precision, noise_input_channel,
                                     sigma_like, step_scale, to_channels)
from rim_monai.networks.utils import autocast_dtype as autocast_dtype_of
from rim_monai.operators.base import LinearOperator
from rim_monai.operators.fourier import MaskedFourier
from rim_monai.operators.likelihood import GaussianLikelihood

__all__ = ["RIM", "PaperCell", "DilatedCell", "DataConsistencyWeight", "LINKS", "ARCHITECTURES", "VARIANTS",
           "DC_PLACEMENTS", "AUTOCAST_DTYPES"]

LINKS = ("identity", "sigmoid", "softplus")
ARCHITECTURES = ("paper", "atrous", "compact")
VARIANTS = ("rim", "gdn", "ffn")
#: where the RIM's data-consistency step goes: after the last step only, or after every step (fed back)
DC_PLACEMENTS = ("output", "recurrent")

#: the a-trous preset: two stages of 64 features, dilations 1 and 2 (about 4.8e5 parameters for grey images)
ATROUS_FEATURES = (64, 64)
ATROUS_DILATIONS = (1, 2)

logger = logging.getLogger(__name__)

_CLAMP = 1e-4  # inverse links clip x into the open range of the link


class PaperCell(nn.Module):
    """The update network of the RIM paper (§4.1), run once per step.

    3x3 conv stride 2 (``features``) + batch norm + tanh -> conv-GRU (``hidden``, at half resolution) -> 3x3
    transposed conv stride 2 back to the input size (``features``) + batch norm + tanh -> 3x3 output conv. With
    ``recurrent=False`` (the FFN ablation) the GRU is a 3x3 convolution with ReLU and there is no state. Odd sizes
    work: the transposed convolution is given the exact output size.

    Args:
        in_channels: input channels (gradient, and estimate unless GDN).
        out_channels: channels of the update.
        features: width of the outer layers (64 in the paper).
        hidden: width of the recurrent layer (256 in the paper).
        recurrent: GRU (``True``) or ReLU layer without state (``False``).
    """

    def __init__(self, in_channels: int, out_channels: int, features: int = 64, hidden: int = 256, recurrent: bool = True) -> None:
        super().__init__()
        self.recurrent = recurrent
        self.down = nn.Conv2d(in_channels, features, 3, stride=2, padding=1)
        self.norm_down = nn.BatchNorm2d(features)
        self.core: nn.Module = ConvGRUCell(features, hidden) if recurrent else nn.Conv2d(features, hidden, 3, padding=1)
        self.up = nn.ConvTranspose2d(hidden, features, 3, stride=2, padding=1)
        self.norm_up = nn.BatchNorm2d(features)
        self.out = nn.Conv2d(features, out_channels, 3, padding=1)

    def forward(self, u: torch.Tensor, state: list[torch.Tensor] | None) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        h = torch.tanh(self.norm_down(self.down(u)))
        if self.recurrent:
            s = self.core(h, None if state is None else state[0])
            h, state = s, [s]
        else:
            h = F.relu(self.core(h))
        h = self.up(h, output_size=list(u.shape[-2:]))
        h = torch.tanh(self.norm_up(h))
        return self.out(h), state


class DilatedCell(nn.Module):
    """A-trous update network without striding (the paper's super-resolution model, and the compact CPU model).

    For each stage ``i``: 3x3 conv with dilation ``dilations[i]`` to ``features[i]`` channels + tanh, then a conv-GRU
    of the same width and dilation (or, with ``recurrent=False``, a 3x3 conv + ReLU without state); a final 3x3 conv
    gives the update.

    Args:
        in_channels: input channels.
        out_channels: channels of the update.
        features: stage widths.
        dilations: stage dilations (same length as ``features``).
        recurrent: GRU (``True``) or ReLU layer without state (``False``).
        padding_mode: boundary condition of every convolution (:data:`~rim_monai.networks.blocks.PADDING_MODES`).

    Raises:
        ValueError: ``features`` and ``dilations`` differ in length or are empty, or an unknown ``padding_mode``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        features: Sequence[int] = (32, 32),
        dilations: Sequence[int] = (1, 2),
        recurrent: bool = True,
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        features, dilations = tuple(int(f) for f in features), tuple(int(d) for d in dilations)
        if not features or len(features) != len(dilations):
            raise ValueError(f"dilations: expected one dilation per stage of features={features}, got {dilations}.")
        self.recurrent = recurrent
        self.convs = nn.ModuleList()
        self.cores = nn.ModuleList()
        width = in_channels
        for f, d in zip(features, dilations):
            self.convs.append(BoundaryConv2d(width, f, 3, padding=same_padding(3, d), dilation=d,
                                             padding_mode=padding_mode))
            if recurrent:
                self.cores.append(ConvGRUCell(f, f, 3, dilation=d, padding_mode=padding_mode))
            else:
                self.cores.append(BoundaryConv2d(f, f, 3, padding=same_padding(3, d), dilation=d,
                                                 padding_mode=padding_mode))
            width = f
        self.out = BoundaryConv2d(width, out_channels, 3, padding=1, padding_mode=padding_mode)

    def forward(self, u: torch.Tensor, state: list[torch.Tensor] | None) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        h = u
        new_state: list[torch.Tensor] = []
        for i, (conv, core) in enumerate(zip(self.convs, self.cores)):
            h = torch.tanh(conv(h))
            if self.recurrent:
                h = core(h, None if state is None else state[i])
                new_state.append(h)
            else:
                h = F.relu(core(h))
        return self.out(h), (new_state if self.recurrent else None)


class DataConsistencyWeight(nn.Module):
    r"""The weight :math:`\lambda` of the output data-consistency step, predicted per sample from a recurrent state.

    With :math:`\bar s_c` and :math:`\hat s_c` the mean and the root-mean-square over the image of the state's
    channel :math:`c`,

    .. math::
        \lambda = \exp\Big(\operatorname{clamp}\big(w^\top [\bar s; \hat s] + b,\;
            \log\lambda_{\min},\; \log\lambda_{\max}\big)\Big),

    so the network that produced the state decides how far the measurements are to be trusted over its estimate:
    close to the data where they determine the image (many coils, low acceleration, little noise), close to the
    estimate where they are noisy or the coil maps are off. It starts at :math:`\lambda` = ``init`` for every
    sample (:math:`w = 0`). :math:`w` and :math:`b` are stored divided by ``rate``: with Adam, whose steps do not
    depend on the gradient's scale, they then move ``rate`` times faster than the other weights at the same learning
    rate (:math:`\log\lambda` has to travel several units in a fine-tune; the convolutions' weights small steps).

    Args:
        channels: channels ``C`` of the state.
        init: the starting weight (> 0).
        bounds: :math:`(\lambda_{\min}, \lambda_{\max})`.
        rate: the learning-rate multiplier (> 0).

    Shapes:
        ``state``: ``(B, C, H, W)`` (any float dtype); returns ``(B,)`` float32.
    """

    def __init__(self, channels: int, init: float = 1.0, bounds: tuple[float, float] = (1e-4, 1e2),
                 rate: float = 50.0) -> None:
        super().__init__()
        if not 0 < bounds[0] <= init <= bounds[1]:
            raise ValueError(f"init: expected a weight within bounds {bounds}, got {init!r}.")
        if not rate > 0:
            raise ValueError(f"rate: expected a positive learning-rate multiplier, got {rate!r}.")
        self.log_bounds = (math.log(bounds[0]), math.log(bounds[1]))
        self.rate = float(rate)
        self.linear = nn.Linear(2 * channels, 1)
        nn.init.zeros_(self.linear.weight)
        nn.init.constant_(self.linear.bias, math.log(init) / self.rate)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        s = state.float()
        features = torch.cat([s.mean(dim=(-2, -1)), (s.square().mean(dim=(-2, -1)) + 1e-12).sqrt()], dim=1)
        return (self.rate * self.linear(features)).squeeze(1).clamp(*self.log_bounds).exp()


class RIM(IterativeNetwork):
    r"""Recurrent Inference Machine (Putzky & Welling 2017, Eqs. 9-15).

    The network iterates in the unconstrained space :math:`\eta` of a link function :math:`x = \Psi(\eta)`:

    .. math::
        \nabla_{y|\eta} &= \Psi'(\eta_t) \odot \frac{c_A}{\sigma^2 + \epsilon} A^H\big(y - A\Psi(\eta_t)\big), \\
        s_{t+1} &= h^*_\phi(\nabla_{y|\eta}, \eta_t, s_t), \qquad
        \eta_{t+1} = \eta_t + h_\phi(\nabla_{y|\eta}, \eta_t, s_{t+1}), \qquad x_{t+1} = \Psi(\eta_{t+1}),

    with :math:`\epsilon = \mathrm{softplus}(\phi_\epsilon)` learnable (:class:`GaussianLikelihood`) and
    :math:`c_A = 1/\|A\|^2` when ``normalize_gradient`` (else 1), which makes the gradient input comparable across
    operators (it is 1 for denoising and orthonormal Fourier sampling). The gradient is taken through the link
    (chain rule, analytically). Start: ``init="adjoint"`` sets :math:`\eta_0 = \Psi^{-1}(A^H y / \|A\|^2)` (values
    clipped into the link's range), ``init="fbp"`` uses ``A.fbp(y)`` when the operator has it, ``init="cg"`` starts from
    ``cg_iterations`` iterations of CGLS (CG-SENSE for multi-coil MRI: the start is data-consistent, so the steps spend
    themselves on the prior rather than on inverting :math:`A^H A`), and ``init="zeros"`` sets :math:`\eta_0 = 0`
    (so :math:`x_0 = \Psi(0)`).

    Output: with ``dc_lambda`` set, every returned estimate goes through a proximal data-consistency step,
    :math:`\hat x_t = \arg\min_z \|A z - y\|^2 + \lambda \|z - x_t\|^2` by ``dc_iterations`` CG iterations
    (:func:`~rim_monai.networks.utils.data_consistency`; it has no weights). With ``dc_placement="output"`` it is
    not fed back into the recurrence; with ``"recurrent"`` every step ends with it, as in MoDL (Aggarwal et al.
    2019), :math:`\eta_{t+1} = \Psi^{-1}\big(\mathrm{DC}_\lambda(\Psi(\eta_t + h_\phi(\cdot)))\big)`, so the
    update network only has to supply what the measurements do not determine (train with it: the network learns the
    trust :math:`\lambda` sets, including where estimated coil maps are wrong).

    ``dc_lambda="holdout"`` (output placement, undersampled MRI: a :class:`~rim_monai.operators.MaskedFourier`)
    chooses :math:`\lambda` per sample, or no step, on held-out k-space
    (:func:`~rim_monai.networks.utils.holdout_data_consistency`): a fifth of the sampled lines outside the calibration
    region is held out, the network is run a second time on the rest, and the weight whose step best predicts the
    held-out data is applied to the estimate from all the data. It costs a second forward pass and two multi-shift CG
    runs; where the mask has too few lines to hold out (or for ``return_all``), no step is taken. On the MRI bundle's
    test sets it gained up to 3 dB where the data determine the image (MNI, 8 coils, 4x) and declined the step where
    ESPIRiT maps from a narrow calibration region are wrong (WG-04, 8 coils), bundle README.

    ``dc_lambda="learned"`` (output placement, recurrent variants) predicts :math:`\lambda` per sample from the
    last recurrent state (:class:`DataConsistencyWeight`, starting at :math:`\lambda = 1`) and applies the step to
    the last estimate only (also with ``return_all``, so the multi-step loss trains the weight through the CG
    iterations). It costs ``dc_iterations`` CG iterations (default
    :data:`~rim_monai.networks.utils.DC_LEARNED_ITERATIONS`, 8) and no second pass; train with it. Weights trained
    without the step load with the starting weight (:meth:`_load_from_state_dict`).

    Noise level as an input (``noise_input=True``): the likelihood's :math:`\epsilon` is learned and, in practice,
    far above :math:`\sigma^2` of images of unit scale (0.84 against 1e-5 to 1e-3 in the MRI bundle), so the
    gradient alone barely tells the network how noisy the data are. With ``noise_input`` the update network gets one
    more input channel, the constant map :math:`\log_{10}\max(\sigma, 10^{-6}) + 2.5`
    (:func:`~rim_monai.networks.utils.noise_input_channel`), from ``sigma`` when given, else estimated from ``y``
    (:func:`~rim_monai.classical.estimate_gaussian_sigma`: k-space background or corners per coil), as FFDNet's noise map
    (Zhang et al. 2018). The estimate enters the input only; the likelihood keeps the given ``sigma`` (0 if none).
    Weights trained without the channel load into such a network with a zero weight for it
    (:meth:`_load_from_state_dict`), so it starts as the same function and fine-tuning learns to use the level. On the
    MRI bundle it gained nothing (-0.07 dB against a paired fine-tune without it, 180 validation items): the network
    reads the level from its gradient well enough there.

    Ablations (paper §4.4): ``variant="gdn"`` drops :math:`\eta_t` from the input; ``variant="ffn"`` replaces the
    GRU by a ReLU convolution and keeps no state.

    Args:
        in_channels: image channels ``C`` (1 grey/CT/MRI, 3 RGB).
        complex_: complex images (MRI), processed as ``2C`` real channels; needs ``link="identity"``.
        architecture: ``"paper"`` (strided, GRU 256), ``"atrous"`` (dilated, ~5e5 parameters) or ``"compact"``.
        variant: ``"rim"``, ``"gdn"`` or ``"ffn"``.
        link: ``"identity"``, ``"sigmoid"`` (the paper's, for images in [0, 1]) or ``"softplus"`` (positive images).
        iterations: the number of steps :math:`T` (the default of ``forward``; any number can be run).
        init: ``"adjoint"``, ``"fbp"``, ``"cg"`` or ``"zeros"`` (see above).
        features: compact architecture: stage widths; paper architecture: ``(outer, hidden)`` widths
            (default ``(64, 256)``); ignored by ``"atrous"``.
        dilations: compact architecture: stage dilations.
        normalize_gradient: scale the likelihood gradient by :math:`1/\|A\|^2`.
        init_epsilon: initial :math:`\epsilon` of the likelihood.
        zero_init_update: start the output convolution of :math:`h_\phi` at zero, so that an untrained RIM returns
            its start :math:`x_0` at every step and training only has to learn improvements (the random initial
            updates otherwise make the first steps worse than the start and slow training down).
        channels_last: run the update network :math:`h_\phi` on ``torch.channels_last`` tensors (the same numbers
            to float rounding; about 1.3x faster convolutions with oneDNN on CPU).
        autocast_dtype: ``None`` (default: the update network computes in the input's precision) or
            ``"bfloat16"`` / ``"float16"``: run :math:`h_\phi` under ``torch.autocast`` in that dtype (mixed
            precision, for training: bfloat16 convolutions use the AMX / tensor-core units), while the likelihood
            gradient, the estimates :math:`\eta_t` and the parameters stay in float32. The function the weights
            define is the same; a checkpoint trained either way loads into the other.
        cg_iterations: the CG iterations of ``init="cg"`` (> 0; ignored by the other starts).
        dc_lambda: :math:`\lambda > 0` of the data-consistency step (see ``dc_placement``), ``"holdout"`` (chosen
            per sample, see above; output placement only), ``"learned"`` (predicted per sample, see above) or
            ``None`` (default): no step.
        dc_iterations: its CG iterations (> 0); ``None``: :data:`~rim_monai.networks.utils.DC_ITERATIONS` (4) for a
            fixed weight, :data:`~rim_monai.networks.utils.DC_HOLDOUT_ITERATIONS` (16) for ``"holdout"``,
            :data:`~rim_monai.networks.utils.DC_LEARNED_ITERATIONS` (8) for ``"learned"``.
        dc_placement: ``"output"`` (default: after the last step, outside the recurrence) or ``"recurrent"`` (after
            every step, fed back; needs ``dc_lambda``).
        noise_input: feed the noise level to the update network as an extra input channel (see above).
        padding_mode: boundary condition of the update network's convolutions, one of
            :data:`~rim_monai.networks.blocks.PADDING_MODES` (``"atrous"`` and ``"compact"``; the strided ``"paper"``
            cell has zero padding only). ``"circular"`` suits Cartesian MRI: the DFT's image is periodic and
            undersampling aliases wrap across the field of view. Weights load across modes (the shapes are the same).
        steps: deprecated name of ``iterations`` (``DeprecationWarning``).

    Shapes:
        ``y``: ``(B, ..., *A.range_shape)``; returns images shaped like ``A.adjoint(y)``, ``(B, C, H, W)`` real or
        complex, or a list of ``iterations`` of them with ``return_all=True``.

    Example:
        >>> from rim_monai.operators import Identity
        >>> net = RIM(in_channels=1, architecture="compact", features=(8, 8), iterations=4)
        >>> y = torch.rand(2, 1, 16, 16)
        >>> len(net(y, Identity((16, 16)), return_all=True, iterations=8))
        8
    """

    def __init__(
        self,
        in_channels: int = 1,
        complex_: bool = False,
        architecture: str = "compact",
        variant: str = "rim",
        link: str = "identity",
        iterations: int = 10,
        init: str = "adjoint",
        features: Sequence[int] | None = None,
        dilations: Sequence[int] = (1, 2),
        normalize_gradient: bool = True,
        init_epsilon: float = 1.0,
        zero_init_update: bool = True,
        channels_last: bool = True,
        autocast_dtype: str | None = None,
        cg_iterations: int = CG_INIT_ITERATIONS,
        dc_lambda: float | str | None = None,
        dc_iterations: int | None = None,
        padding_mode: str = "zeros",
        dc_placement: str = "output",
        noise_input: bool = False,
        *,
        steps: int | None = None,
    ) -> None:
        iterations = renamed_argument("RIM", "iterations", iterations, "steps", steps, default=10)
        cg_iterations = check_count(cg_iterations, "cg_iterations", "CG iterations")
        holdout, learned = dc_lambda == DC_HOLDOUT, dc_lambda == DC_LEARNED
        if dc_iterations is None:
            dc_iterations = DC_HOLDOUT_ITERATIONS if holdout else DC_LEARNED_ITERATIONS if learned else DC_ITERATIONS
        dc_iterations = check_count(dc_iterations, "dc_iterations", "CG iterations")
        if not (dc_lambda is None or holdout or learned):
            try:
                valid = not isinstance(dc_lambda, bool) and float(dc_lambda) > 0
            except (TypeError, ValueError):
                valid = False
            if not valid:
                raise ValueError(f"dc_lambda: expected None, a positive data-consistency weight, {DC_HOLDOUT!r} or "
                                 f"{DC_LEARNED!r}, got {dc_lambda!r}." + command_line_none_hint(dc_lambda))
        if (holdout or learned) and dc_placement == "recurrent":
            raise ValueError(f"dc_lambda: {dc_lambda!r} chooses the weight of the output step only; "
                             "dc_placement='recurrent' needs a number.")
        if learned and variant == "ffn":
            raise ValueError(f"dc_lambda: {DC_LEARNED!r} reads the weight from the recurrent state; variant 'ffn' "
                             "has none.")
        if dc_placement not in DC_PLACEMENTS:
            raise ValueError(f"dc_placement: expected one of {DC_PLACEMENTS}, got {dc_placement!r}.")
        if dc_placement == "recurrent" and dc_lambda is None:
            raise ValueError("dc_lambda: dc_placement='recurrent' needs a data-consistency weight, got None.")
        super().__init__(in_channels, complex_, iterations, init, share_weights=True)
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture: expected one of {ARCHITECTURES}, got {architecture!r}.")
        if variant not in VARIANTS:
            raise ValueError(f"variant: expected one of {VARIANTS}, got {variant!r}.")
        if link not in LINKS:
            raise ValueError(f"link: expected one of {LINKS}, got {link!r}.")
        if complex_ and link != "identity":
            raise ValueError(f"link: complex images need link='identity' (a {link} link has no meaning for complex values).")
        if architecture == "paper" and padding_mode != "zeros":
            raise ValueError(f"padding_mode: the strided 'paper' architecture has zero padding only, got {padding_mode!r}.")
        self.cg_iterations = cg_iterations
        self.dc_lambda = dc_lambda if dc_lambda is None or holdout or learned else float(dc_lambda)
        self.dc_iterations = dc_iterations
        self.dc_placement = dc_placement
        self.channels_last = bool(channels_last)
        self.autocast_dtype = autocast_dtype_of(autocast_dtype)
        self.architecture, self.variant, self.link = architecture, variant, link
        self.normalize_gradient = bool(normalize_gradient)
        channels = self.real_channels
        self.noise_input = bool(noise_input)
        cell_in = (channels if variant == "gdn" else 2 * channels) + int(self.noise_input)
        recurrent = variant != "ffn"
        if architecture == "paper":
            outer, hidden = tuple(features) if features is not None else (64, 256)
            self.cell: nn.Module = PaperCell(cell_in, channels, outer, hidden, recurrent)
        elif architecture == "atrous":
            self.cell = DilatedCell(cell_in, channels, ATROUS_FEATURES, ATROUS_DILATIONS, recurrent, padding_mode)
        else:
            self.cell = DilatedCell(cell_in, channels, tuple(features) if features is not None else (32, 32), dilations,
                                    recurrent, padding_mode)
        self.likelihood = GaussianLikelihood(init_epsilon=init_epsilon)
        self.dc_weight: DataConsistencyWeight | None = None
        if learned:
            # the last recurrent stage: the paper cell's GRU, the dilated cell's last stage
            last = self.cell.core if architecture == "paper" else self.cell.cores[-1]
            self.dc_weight = DataConsistencyWeight(last.hidden_channels)
        if zero_init_update:
            nn.init.zeros_(self.cell.out.weight)
            nn.init.zeros_(self.cell.out.bias)

    def _first_conv_name(self) -> str:
        """The name of the update network's first convolution (the one that reads the input channels)."""
        return "cell.down" if self.architecture == "paper" else "cell.convs.0"

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs) -> None:
        """Load weights trained without the noise input into a ``noise_input`` RIM: the first convolution gets a
        zero weight for the noise channel (its last input channel), so the network computes the same function.
        Weights trained without ``dc_lambda="learned"`` load into such a RIM with the weight head's starting values;
        weights trained with it load into a RIM without it, the head left out (logged)."""
        head = f"{prefix}dc_weight."
        if self.dc_weight is not None:
            for name, value in self.dc_weight.state_dict().items():
                state_dict.setdefault(head + name, value.clone())
        else:
            unused = [key for key in state_dict if key.startswith(head)]
            if unused:
                logger.info("RIM: the weights carry a learned data-consistency weight (%s); unused with dc_lambda=%r",
                            ", ".join(unused), self.dc_lambda)
            for key in unused:
                del state_dict[key]
        key = f"{prefix}{self._first_conv_name()}.weight"
        if self.noise_input and key in state_dict:
            weight = state_dict[key]
            wanted = self.get_submodule(self._first_conv_name()).weight.shape[1]
            if weight.ndim == 4 and weight.shape[1] == wanted - 1:
                state_dict[key] = torch.cat([weight, weight.new_zeros(weight.shape[0], 1, *weight.shape[2:])], dim=1)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    @property
    def steps(self) -> int:
        """Deprecated name of :attr:`iterations`."""
        warnings.warn("RIM: 'steps' is deprecated, use 'iterations'.", DeprecationWarning, stacklevel=2)
        return self.iterations

    # ------------------------------------------------------------------ link function
    def psi(self, eta: torch.Tensor) -> torch.Tensor:
        """The link :math:`x = \\Psi(\\eta)` (channel layout)."""
        if self.link == "sigmoid":
            return torch.sigmoid(eta)
        if self.link == "softplus":
            return F.softplus(eta)
        return eta

    def psi_derivative(self, eta: torch.Tensor) -> torch.Tensor:
        """:math:`\\Psi'(\\eta)` elementwise."""
        if self.link == "sigmoid":
            s = torch.sigmoid(eta)
            return s * (1 - s)
        if self.link == "softplus":
            return torch.sigmoid(eta)
        return torch.ones_like(eta)

    def psi_inverse(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`\\Psi^{-1}(x)`, with ``x`` clipped into the link's range (``(0, 1)`` or ``(0, inf)``)."""
        if self.link == "sigmoid":
            return torch.logit(x.clamp(_CLAMP, 1 - _CLAMP))
        if self.link == "softplus":
            x = x.clamp_min(_CLAMP)
            return x + torch.log(-torch.expm1(-x))  # log(exp(x) - 1), stable for large x
        return x

    # ------------------------------------------------------------------ the update network
    def update(
        self, u: torch.Tensor, state: list[torch.Tensor] | None
    ) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        """:math:`h_\\phi(u, s_t)`: the update ``(B, C', H, W)`` (in ``u``'s dtype) and the new state.

        ``u`` is the network input ``(B, 2C', H, W)`` (gradient and estimate; ``(B, C', H, W)`` for GDN); it runs in
        ``channels_last`` layout and under ``autocast_dtype`` when set (see the class docstring).
        """
        delta, state = mixed_precision(self.cell, u, state, channels_last=self.channels_last, dtype=self.autocast_dtype)
        return delta.to(u.dtype), state

    # ------------------------------------------------------------------ the extrinsic input
    def likelihood_gradient(
        self, eta: torch.Tensor, y: torch.Tensor, A: LinearOperator, sigma: torch.Tensor, scale: float = 1.0
    ) -> torch.Tensor:
        r""":math:`\nabla_{y|\eta} = \Psi'(\eta) \odot c \, A^H(y - A\Psi(\eta)) / (\sigma^2 + \epsilon)` in channel layout.

        Args:
            eta: ``(B, C', H, W)`` real channels (``C' = 2C`` for complex images).
            y: measurements.
            A: the operator.
            sigma: noise level broadcastable to the image (see :func:`~rim_monai.networks.utils.sigma_like`).
            scale: the factor :math:`c` (``1/||A||^2`` when the gradient is normalised).
        """
        x = from_channels(self.psi(eta), self.complex_)
        grad_x = to_channels(self.likelihood(x, y, A, sigma)) * scale
        return self.psi_derivative(eta) * grad_x

    def forward(
        self,
        y: torch.Tensor,
        A: LinearOperator,
        iterations: int | None = None,
        sigma: float | torch.Tensor | None = None,
        return_all: bool = False,
        *,
        steps: int | None = None,
    ) -> torch.Tensor | list[torch.Tensor]:
        """Run ``iterations`` RIM steps (default ``self.iterations``) on measurements ``y`` of operator ``A``.

        As :meth:`IterativeNetwork.forward <rim_monai.networks.base.IterativeNetwork.forward>`, with the noise level
        ``sigma``: a float or one value per sample ``(B,)``; ``None`` means 0 (then only the learned
        :math:`\\epsilon` sets the gradient scale; a ``noise_input`` RIM estimates the level of its input channel from
        ``y``). ``return_all`` gives the ``iterations`` estimates :math:`x_1, \\dots, x_T`.

        Raises:
            ValueError: bad ``y``, ``A``, ``iterations`` or ``sigma``.
        """
        adjoint = self.check(y, A)
        count = self.call_iterations(iterations, steps)
        noise = noise_input_channel(y, A, sigma, adjoint) if self.noise_input else None
        estimates, state = self._run(y, A, adjoint, count, sigma_like(sigma, adjoint), noise)
        if not return_all:
            estimates = estimates[-1:]
        if self.dc_weight is not None:
            lam = self.dc_weight(state[-1])
            if logger.isEnabledFor(logging.DEBUG):  # tolist() synchronises a GPU: only when logged
                logger.debug("RIM: learned data-consistency weight per sample %s", lam.tolist())
            estimates[-1] = data_consistency(estimates[-1], y, A, lam, self.dc_iterations)
        elif self.dc_lambda == DC_HOLDOUT:
            if not return_all:
                estimates = [self._holdout_step(estimates[-1], y, A, count, sigma)]
        elif self.dc_lambda is not None and self.dc_placement == "output":
            estimates = [data_consistency(x, y, A, self.dc_lambda, self.dc_iterations) for x in estimates]
        return estimates if return_all else estimates[-1]

    def _holdout_step(self, x: torch.Tensor, y: torch.Tensor, A: LinearOperator, iterations: int,
                      sigma: float | torch.Tensor | None) -> torch.Tensor:
        """``x`` after the data-consistency step whose weight held-out k-space chooses (``dc_lambda="holdout"``)."""
        if not isinstance(A, MaskedFourier) or not A.supports("replace"):
            raise ValueError(f"dc_lambda: {DC_HOLDOUT!r} needs an undersampled MRI operator (MaskedFourier), got "
                             f"{type(A).__name__}.")
        split = split_measurements(A)
        if split is None:
            logger.info("RIM: too few sampled lines outside the calibration region to hold out; no data-consistency "
                        "step")
            return x
        train_mask, held_mask = split
        train, y_train = A.replace(mask=train_mask), y * train_mask
        adjoint = train.adjoint(y_train)
        noise = noise_input_channel(y_train, train, sigma, adjoint) if self.noise_input else None
        # A's 1/||A||^2 (cached): the network sees the same scale, and no second power iteration runs
        x_train = self.iterate(y_train, train, adjoint, iterations, sigma_like(sigma, adjoint), noise, step_scale(A))[-1]
        estimate, lam = holdout_data_consistency(x, x_train, y, A, train_mask, held_mask,
                                                 iterations=self.dc_iterations)
        logger.debug("RIM: hold-out data-consistency weight per sample %s", lam.flatten().tolist())
        return estimate

    def iterate(
        self,
        y: torch.Tensor,
        A: LinearOperator,
        adjoint: torch.Tensor,
        iterations: int,
        sigma: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        step: float | None = None,
    ) -> list[torch.Tensor]:
        """The estimates :math:`x_1, \\dots, x_T` (``T = iterations``) for a noise level ``sigma`` broadcastable to
        the images (:func:`~rim_monai.networks.utils.sigma_like`; ``None``: 0) and, for a ``noise_input`` RIM, its
        noise channel ``(B, 1, 1, 1)`` (:func:`~rim_monai.networks.utils.noise_input_channel`). ``step`` is
        :math:`1/\\|A\\|^2` when already known (default: :func:`~rim_monai.networks.utils.step_scale` of ``A``)."""
        return self._run(y, A, adjoint, iterations, sigma, noise, step)[0]

    def _run(
        self,
        y: torch.Tensor,
        A: LinearOperator,
        adjoint: torch.Tensor,
        iterations: int,
        sigma: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        step: float | None = None,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
        """:meth:`iterate` and the recurrent state after the last step (``None`` for ``variant="ffn"``)."""
        if self.noise_input and noise is None:
            raise ValueError("noise: a noise_input RIM needs its noise channel (B, 1, 1, 1); call forward.")
        sig = sigma_like(None, adjoint) if sigma is None else sigma
        if step is None and (self.normalize_gradient or self.init == "adjoint"):
            step = step_scale(A)
        scale = step if self.normalize_gradient else 1.0
        if self.init == "zeros":
            eta = torch.zeros_like(to_channels(adjoint))
        else:
            x0 = initial_estimate(y, A, self.init, adjoint, cg_iterations=self.cg_iterations, scale=step)
            eta = self.psi_inverse(to_channels(x0))
        state = None
        estimates: list[torch.Tensor] = []
        for _ in range(iterations):
            grad = self.likelihood_gradient(eta, y, A, sig, scale)
            u = grad if self.variant == "gdn" else torch.cat([grad, eta], dim=1)
            if noise is not None:
                u = torch.cat([u, noise.expand(-1, 1, *u.shape[2:])], dim=1)
            delta, state = self.update(u, state)
            eta = eta + delta
            x = from_channels(self.psi(eta), self.complex_)
            if self.dc_placement == "recurrent":
                x = data_consistency(x, y, A, self.dc_lambda, self.dc_iterations)
                eta = self.psi_inverse(to_channels(x))
            estimates.append(x)
        return estimates, state
