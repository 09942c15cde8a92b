// Publishes the broker's emitter (Aedes's in-memory one, or the cluster fabric's) carries
// at once; Aedes's default is 100. What exceeds it waits in the emitter's queue (drained
// in a loop: emitter-drain.ts). A received federation batch is
// republished in chunks of half of this (federation/relay.ts): the larger the chunk, the
// more of a subscriber's deliveries share one socket write.
export const EMITTER_CONCURRENCY = 1000;
