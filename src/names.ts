import { oci } from './errors.js';

const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
export const MAX_NAME_LENGTH = 255;

export function isValidRepositoryName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_NAME_LENGTH && NAME.test(name);
}

/** Validates a repository name against the OCI grammar; `..`, empty components and the like never pass. */
export function validateRepositoryName(name: string): string {
  if (!isValidRepositoryName(name)) {
    throw oci('NAME_INVALID', `invalid repository name "${name.slice(0, MAX_NAME_LENGTH + 1)}"`, { name: name.slice(0, 300) });
  }
  return name;
}

export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}
