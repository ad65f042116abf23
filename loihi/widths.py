"""Every width and register of Loihi's arithmetic that we use, defined once (docs/fixed-point.md).

Sources (docs/sources.md, "Loihi fixed point"): Lava 0.10's bit-accurate LIF
(lava/proc/lif/models.py, AbstractPyLifModelFixed: 24-bit u and v, 12-bit decays, 6-bit
activation and threshold shifts, 13-bit bias mantissa with a 3-bit exponent, 17-bit vth) and
Dense (lava/proc/dense/models.py with lava/utils/weightutils.py: 8-bit weights, an exponent).
The rest are our choices, marked so.
"""

# Lava's LIF datapath
ACT_SHIFT = 6                 # synaptic input and threshold are shifted left by 6 (act_shift, vth_shift)
UV_BITS = 24                  # u and v are 24-bit signed
U_WRAP = 1 << (UV_BITS - 1)   # u wraps at +-2^23
V_LIMIT = U_WRAP - 1          # v saturates at +-(2^23 - 1)
DECAY_BITS = 12               # du, dv: x * (4096 - d) >> 12
DECAY_ONE = 1 << DECAY_BITS
VTH_BITS = 17                 # unsigned threshold mantissa
BIAS_MANT = 4095              # 13-bit signed bias mantissa ...
BIAS_EXP = 7                  # ... with a 3-bit unsigned exponent: bias = mant << exp

# Lava's Dense / Sparse weights: 8-bit mantissa; mixed signs lose their least significant bit
WEIGHT_MAX = 255              # one sign: [0, 255] or [-255, 0]
WEIGHT_MAX_MIXED = 254        # mixed signs: even values in [-254, 254]
WEIGHT_EXP = (-8, 7)          # weight exponent range (Loihi 1's wgtExp)

# Lava's sigma-delta neurons (proc/sdn: spike_exp = state_exp = 6, as netx builds them)
SD_STATE_BITS = 12            # sigma, activation, residue and threshold in units of 2^-12
SD_SHIFT = 6                  # a message is d >> 6: units of 2^-(12 - 6)

# Messages
GRADED_BITS = 24              # graded spikes: 24-bit signed payload
GRADED_LIMIT = (1 << (GRADED_BITS - 1)) - 1
PAYLOAD_BITS = 8              # our choice: a graded neuron's spike carries k in 0..255 (ResetSubIF levels)
LEVELS_MAX = (1 << PAYLOAD_BITS) - 1

# Our choices (docs/fixed-point.md)
VTH_MANT = 1 << 10            # IF threshold mantissa: one input unit = threshold / 1024
CUBA_SCALE = 64               # LIF / CubaLIF: vth = 64 * threshold (lava-dl's w_scale)
INPUT_BITS = 8                # fraction bits of the analog input, sent as graded spikes
SOFTMAX_BITS = 8              # fraction bits of a host softmax's output, sent as graded spikes
LAYERNORM_BITS = 8            # fraction bits of a host layer norm's output, sent as graded spikes
