// A repository glob, as access rules and retention rules write them: `*` and `?` stay
// within one path component, `**` crosses them (`team/*` matches team/app, not team/a/b;
// `ci/**` matches both ci/a and ci/a/b). A `**` that is a whole component also matches no
// component at all, as in other glob dialects: `a/**/b` matches a/b, `**/app` matches app.
// Everything else is literal. (Line comments: the examples would end a block comment.)
export function globToRegExp(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      const wholeComponent = (i === 0 || glob[i - 1] === '/') && glob[i + 2] === '/';
      if (wholeComponent) {
        // Any number of whole components, each with its slash, or none.
        source += '(?:[^/]*/)*';
        i += 2;
      } else {
        source += '.*';
        i++;
      }
    } else if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else source += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}
