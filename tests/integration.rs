mod tooling;
