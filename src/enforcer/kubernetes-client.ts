import type * as K8s from '@kubernetes/client-node';

/** The `@kubernetes/client-node` module namespace (2.x). */
export type KubernetesClientModule = typeof K8s;

let loaded: KubernetesClientModule | undefined;

/**
 * Loads `@kubernetes/client-node` 2.x, which ships only as an ES module, from this CommonJS project.
 *
 * Node 20.19+ loads an ES module through `require` (require(esm)) as long as nothing in its graph uses
 * top-level await, which holds for client-node 2.x. The require used is Node's own, taken from the
 * built-in `module`: a module system wrapped around ours (Jest's registry, which transforms only
 * TypeScript and cannot evaluate ESM without --experimental-vm-modules) would otherwise try, and fail,
 * to load the package itself. Types come from a type-only import, erased at compile time.
 */
export function loadKubernetesClient(): KubernetesClientModule {
  if (loaded) return loaded;
  const nodeModule = process.getBuiltinModule?.('node:module');
  const nativeRequire = nodeModule ? nodeModule.createRequire(__filename) : require;
  try {
    loaded = nativeRequire('@kubernetes/client-node') as KubernetesClientModule;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'ERR_REQUIRE_ESM' || code === 'ERR_REQUIRE_ASYNC_MODULE') {
      throw new Error(
        `@kubernetes/client-node is an ES module and this Node (${process.version}) cannot require it; ` +
          'the Kubernetes enforcer needs Node 20.19 or newer',
      );
    }
    throw err;
  }
  return loaded;
}
