/** Types of `cluster-key-slot` (ioredis's own slot function; the package ships none). */
declare module "cluster-key-slot" {
  /** Redis Cluster hash slot of a key (honours `{hash tags}`), 0..16383. */
  function generate(key: string | Buffer): number;
  export = generate;
}
