"""Networks with known answers, for sampler tests (they live in the public coldlab.testing)."""

from coldlab.testing.oracles import ConstantNetwork, OracleNetwork

__all__ = ["ConstantNetwork", "OracleNetwork"]
