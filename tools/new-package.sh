#!/usr/bin/env bash
# Scaffold a workspace package: tools/new-package.sh <dir> <@dfd/name> "<description>"
# Then run `npm install` at the root once so the workspace link appears in node_modules.
set -euo pipefail
d=$1; n=$2; desc=$3
mkdir -p "$d/src"
[ -f "$d/package.json" ] || cat > "$d/package.json" <<EOF
{
  "name": "$n",
  "version": "0.1.0",
  "description": "$desc",
  "type": "module",
  "license": "MIT",
  "main": "./dist/index.js",
  "types": "./dist/index.d.ts",
  "exports": {
    ".": {
      "@dfd/source": "./src/index.ts",
      "types": "./dist/index.d.ts",
      "default": "./dist/index.js"
    },
    "./package.json": "./package.json"
  },
  "files": ["dist", "!dist/**/*.test.*", "README.md"],
  "scripts": {
    "build": "tsc -p tsconfig.build.json",
    "test": "vitest run --config ../../vitest.config.ts --passWithNoTests"
  }
}
EOF
[ -f "$d/tsconfig.build.json" ] || cat > "$d/tsconfig.build.json" <<'EOF'
{
  "extends": "../../tsconfig.base.json",
  "compilerOptions": { "rootDir": "src", "outDir": "dist" },
  "include": ["src/**/*.ts"],
  "exclude": ["src/**/*.test.ts", "src/**/test-utils/**"]
}
EOF
[ -f "$d/src/index.ts" ] || echo "export {};" > "$d/src/index.ts"
[ -f "$d/README.md" ] || printf "# %s\n\n%s\n" "$n" "$desc" > "$d/README.md"
