/**
 * A repository glob, as access rules and retention rules write them: `*` and `?`
 * stay within one path component, `**` crosses them (`team/*` matches team/app, not
 * team/a/b; `ci/**` matches both ci/a and ci/a/b); everything else is literal.
 */
export function globToRegExp(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      source += '.*';
      i++;
    } else if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else source += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}
