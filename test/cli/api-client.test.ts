import { errorMessage, Reason } from '../../src/cli/api-client';

describe('the error an API answer carries, as the CLI prints it', () => {
  it('reads RFC 9457 problem details and the older {error, message} shape', () => {
    expect(errorMessage(JSON.stringify({ type: 'about:blank', title: 'Conflict', status: 409, detail: 'approval a is already approved' }), 'Conflict')).toBe('Conflict: approval a is already approved');
    expect(errorMessage(JSON.stringify({ title: 'Not Found', status: 404 }), 'Not Found')).toBe('Not Found');
    expect(errorMessage(JSON.stringify({ error: 'forbidden', message: 'role viewer may not do this' }), 'Forbidden')).toBe('forbidden: role viewer may not do this');
  });

  it('shows any other body clipped, with control characters blanked (a proxy\'s page is hostile input too)', () => {
    expect(errorMessage('', 'Bad Gateway')).toBe('Bad Gateway');
    expect(errorMessage('<html>\x1b[31mboom</html>', 'Bad Gateway')).toBe('<html> [31mboom</html>');
    expect(errorMessage('x'.repeat(1000), 'Bad Gateway')).toHaveLength(300);
    expect(errorMessage('{"unexpected":true}', 'Bad Gateway')).toBe('{"unexpected":true}');
  });
});

describe('--reason, checked before any call (docs/cli.md: 3 to 2000 characters)', () => {
  it('takes 3 to 2000 characters once trimmed, and refuses the rest', () => {
    expect(Reason.parse('  ok!  ')).toBe('ok!');
    expect(Reason.parse('x'.repeat(2000))).toHaveLength(2000);
    expect(Reason.safeParse(' ok ').success).toBe(false);
    expect(Reason.safeParse('x'.repeat(2001)).success).toBe(false);
    expect(Reason.safeParse(undefined).error?.issues[0]?.message).toBe('say why: --reason TEXT');
  });
});
