mod tooling;
mod tooling_seed;
