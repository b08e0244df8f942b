// Caremesh's pages in a real Chromium (Debian's /usr/bin/chromium, driven by playwright-core),
// with JavaScript disabled for the journeys: everything must work as plain HTML forms.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { startNode, PASSWORDS, root } from './node.mjs';

const require = createRequire(import.meta.url);
const axePath = require.resolve('axe-core/axe.min.js');
const shots = path.join(root, 'artifacts', 'screenshots');
mkdirSync(shots, { recursive: true });

let node;
let browser;
const state = {};
const sizes = {};

before(async () => {
  node = await startNode();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    // Playwright gives every launch a fresh, temporary user-data directory of its own.
  });
});

after(async () => {
  await browser?.close();
  await node?.stop();
  writeFileSync(path.join(root, 'artifacts', 'page-sizes.json'), JSON.stringify(sizes, null, 2));
  console.log('page sizes (bytes of HTML, before images):', sizes);
});

/** A JavaScript-disabled browser context, as a phone with scripts off would be. */
async function noJs(locale = 'zh-CN') {
  const ctx = await browser.newContext({ javaScriptEnabled: false, locale, viewport: { width: 412, height: 900 } });
  if (process.env.TRACE_RESPONSES) ctx.on('response', (r) => console.log(r.status(), r.request().method(), r.url()));
  return ctx;
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

/** Records the HTML size of a page and checks it stays under 100 KB. */
async function measure(page, name) {
  const r = await page.request.get(page.url());
  const bytes = (await r.body()).length;
  sizes[name] = bytes;
  assert.ok(bytes < 100 * 1024, `${name} is ${bytes} bytes`);
}

/** Runs axe-core on the page (in a JavaScript-enabled copy of the context, same cookies). */
async function axeCheck(context, url, label) {
  const storage = await context.storageState();
  const ctx = await browser.newContext({ storageState: storage, locale: 'zh-CN' });
  const page = await ctx.newPage();
  await page.goto(url);
  // The page's CSP forbids inline scripts; the test injects axe through the DevTools protocol.
  await page.evaluate(readFileSync(axePath, 'utf8'));
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { runOnly: ['wcag2a', 'wcag2aa'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 3) }));
  });
  await ctx.close();
  assert.deepEqual(result, [], `axe violations on ${label}: ${JSON.stringify(result)}`);
}

async function login(page, username, password) {
  await page.goto(`${node.base}/login`);
  await page.getByLabel(/用户名|Username/).fill(username);
  await page.getByLabel(/^(密码|Password)$/).fill(password);
  await page.getByRole('button', { name: /^(登录|Log in)$/ }).click();
  await page.waitForURL((u) => !u.pathname.startsWith('/login'));
}

test('admin creates a patient invite, a doctor account and records the doctor credential', async () => {
  const ctx = await noJs();
  const page = await ctx.newPage();
  await login(page, 'admin', PASSWORDS.admin);
  await page.goto(`${node.base}/admin`);
  await measure(page, 'admin');
  await page.getByLabel('备注（如“门诊二维码”）').fill('乳腺外科门诊');
  await page.getByRole('button', { name: '创建' }).click();
  await page.getByText('邀请已创建。').waitFor();
  const url = await page.locator('#invite-url').inputValue();
  assert.match(url, /\/join\/[A-Za-z0-9_-]{43}$/);
  state.patientInvite = url;
  await assert.doesNotReject(page.getByText(/有效期至 \d{4}年/).waitFor());
  const qr = page.locator('.qr img');
  assert.match(await qr.getAttribute('src'), /^data:image\/png;base64,/);
  await shot(page, 'admin-invite');
  await axeCheck(ctx, `${node.base}/admin`, 'admin');

  // A new doctor account, then the credential the hospital checked.
  await page.goto(`${node.base}/admin/accounts`);
  await page.getByLabel('身份').selectOption('doctor');
  await page.getByLabel('用户名').fill('dr.zhang');
  await page.getByLabel('显示名称').fill('张医生');
  await page.getByRole('button', { name: '创建' }).click();
  await page.getByText('账号已创建。').waitFor();
  state.zhangPassword = await page.locator('#pw').inputValue();
  assert.ok(state.zhangPassword.length >= 20);
  await page.getByRole('link', { name: '登记医师资质' }).click();
  await page.getByLabel('职称').fill('主任医师');
  await page.getByLabel('专科').fill('乳腺外科');
  await page.getByLabel('执业证书编号').fill('110130000123456');
  await page.getByRole('button', { name: '登记医师资质' }).click();
  await page.getByText('有效 · 由唐山市人民医院核验').waitFor();
  await shot(page, 'admin-doctor-credential');
  await page.goto(`${node.base}/admin/accounts`);
  const row = page.locator('tr', { hasText: 'dr.zhang' });
  assert.match(await row.innerText(), /有效/);
  await ctx.close();
});

test('doctor shares a group invite as a QR code image with its expiry and limit', async () => {
  const ctx = await noJs();
  const page = await ctx.newPage();
  await login(page, 'dr.li', PASSWORDS.drli);
  const gid = node.groups[0].id;
  await page.goto(`${node.base}/g/${gid}/invites`);
  await page.getByLabel('备注（如“门诊二维码”）').fill('门诊海报');
  await page.getByLabel('最多使用次数').fill('20');
  await page.getByRole('button', { name: '创建' }).click();
  await page.getByText(/有效期至 \d{4}年/).waitFor();
  await page.getByText('已使用 0 次，上限 20 次').waitFor();
  const img = page.locator('.qr img');
  assert.equal(await img.count(), 1, 'one QR code per screen');
  const src = await img.getAttribute('src');
  const png = await page.request.get(new URL(src, node.base).href);
  assert.equal(png.headers()['content-type'], 'image/png');
  state.groupInvite = await page.locator('#invite-url').inputValue();
  state.groupInvitePage = page.url();
  await shot(page, 'group-invite-qr');
  await ctx.close();
});

test('patient signs up from the invite link, joins the group and asks; <script> stays text', async () => {
  const ctx = await noJs();
  const page = await ctx.newPage();
  await page.goto(state.patientInvite);
  await measure(page, 'join');
  await shot(page, 'patient-signup');
  await axeCheck(ctx, state.patientInvite, 'sign-up');
  await page.getByLabel('显示名称').fill('康复中的王阿姨');
  await page.getByLabel('用户名').fill('wang.ayi');
  await page.getByLabel('密码').fill('patient-password-1');
  await page.getByRole('button', { name: '注册并进入' }).click();
  await page.getByRole('heading', { name: '我的群' }).waitFor();
  await page.goto(state.groupInvite);
  await page.getByRole('button', { name: '加入本群' }).click();
  await page.getByRole('heading', { name: '乳腺癌术后康复 · 唐山' }).waitFor();
  await page.getByText('群内回答为健康教育，不是诊断').first().waitFor();
  await page.getByLabel('您的问题').fill('<script>alert("x")</script> 术后多久可以做上肢锻炼？');
  await page.getByRole('button', { name: '发布问题' }).click();
  await page.locator('.main-post .body').waitFor();
  const body = await page.locator('.main-post .body').innerText();
  assert.ok(body.includes('<script>alert("x")</script>'), body);
  assert.equal(await page.locator('main script').count(), 0, 'no script element from user content');
  state.threadUrl = page.url();
  state.patientStorage = await ctx.storageState();
  await measure(page, 'thread');
  await shot(page, 'patient-thread');
  await axeCheck(ctx, state.threadUrl, 'thread');
  await page.goto(`${node.base}/g/${node.groups[0].id}`);
  await measure(page, 'group');
  await shot(page, 'patient-group');
  await axeCheck(ctx, page.url(), 'group');
  await ctx.close();
});

test('doctor answers from the queue and posts one announcement to two groups', async () => {
  const ctx = await noJs();
  const page = await ctx.newPage();
  await login(page, 'dr.li', PASSWORDS.drli);
  await page.goto(`${node.base}/doctor/queue`);
  await page.getByText('共 1 个问题等待您回答').waitFor();
  await measure(page, 'queue');
  await shot(page, 'doctor-queue');
  await axeCheck(ctx, page.url(), 'queue');
  await page.getByLabel('您的回答').fill('一般术后第二天即可开始手指和腕部活动，循序渐进。');
  await page.getByRole('button', { name: '回答', exact: true }).click();
  await page.getByText('目前没有待回答的问题。').waitFor();

  await page.goto(`${node.base}/doctor/announce`);
  await page.getByLabel('乳腺癌术后康复 · 唐山').check();
  await page.getByLabel('糖尿病自我管理 · 唐山').check();
  await page.getByLabel('公告标题').fill('本周六上午健康讲座');
  await page.getByLabel('公告内容').fill('地点：门诊楼三楼会议室。欢迎家属一同参加。');
  await page.getByLabel('置顶这条公告').check();
  await shot(page, 'doctor-announce');
  await page.getByRole('button', { name: '发布公告' }).click();
  await page.getByText('已发布到 2 个群：').waitFor();
  assert.equal(await page.locator('main li a').count(), 2);
  state.announcementUrl = await page.locator('main li a').first().getAttribute('href');
  await ctx.close();
});

test('patient sees the answer and the pinned announcement; the doctor sees an aggregate count', async () => {
  const ctx = await browser.newContext({ javaScriptEnabled: false, storageState: state.patientStorage, locale: 'zh-CN' });
  const page = await ctx.newPage();
  await page.goto(state.threadUrl);
  await page.getByText('一般术后第二天即可开始手指和腕部活动').waitFor();
  await page.locator('.reply .badge', { hasText: '医生' }).waitFor();
  await page.locator('.reply').getByRole('button', { name: '有帮助（0）' }).click();
  await page.getByRole('button', { name: /已标记有帮助（1）/ }).waitFor();
  await page.goto(`${node.base}/g/${node.groups[0].id}`);
  await page.getByRole('heading', { name: '置顶公告' }).waitFor();
  await page.getByText('本周六上午健康讲座').waitFor();
  assert.equal(await page.locator('.seen').count(), 0, 'patients see no reach counts');
  await ctx.close();

  const dctx = await noJs();
  const dpage = await dctx.newPage();
  await login(dpage, 'dr.li', PASSWORDS.drli);
  await dpage.goto(`${node.base}${state.announcementUrl}`);
  await dpage.getByText('已有 1 位成员看过').waitFor();
  await dpage.goto(state.threadUrl);
  await dpage.getByRole('button', { name: '采纳为答案' }).click();
  await dpage.getByText('已采纳的回答').waitFor();
  await shot(dpage, 'doctor-thread-accepted');
  await dctx.close();
});

test('language follows the browser and switches with a button; elder mode enlarges text', async () => {
  const ctx = await noJs('en-GB');
  const page = await ctx.newPage();
  await page.goto(`${node.base}/login`);
  await page.getByRole('heading', { name: 'Log in' }).waitFor();
  await page.getByRole('button', { name: '中文' }).click();
  await page.getByRole('heading', { name: '登录' }).waitFor();
  assert.equal(await page.locator('html').getAttribute('lang'), 'zh-CN');
  await page.reload();
  await page.getByRole('heading', { name: '登录' }).waitFor();

  const patient = await browser.newContext({ javaScriptEnabled: false, storageState: state.patientStorage, locale: 'zh-CN' });
  const p = await patient.newPage();
  await p.goto(state.threadUrl);
  await p.getByRole('button', { name: 'English' }).click();
  await p.getByRole('heading', { name: /^Replies: \d+$/ }).first().waitFor();
  await p.getByText('Answers in this group are education, not a diagnosis').waitFor();
  await p.getByText(/\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2}/).first().waitFor();
  await p.getByRole('button', { name: 'Larger text' }).click();
  assert.match(await p.locator('body').getAttribute('class'), /elder/);
  await shot(p, 'patient-thread-en-elder');
  await p.getByRole('button', { name: 'Standard text' }).click();
  await p.getByRole('button', { name: '中文' }).click();
  await patient.close();
  await ctx.close();
});

test('a form POST without the CSRF token is refused with 403 and changes nothing', async () => {
  const ctx = await browser.newContext({ javaScriptEnabled: false, storageState: state.patientStorage });
  const page = await ctx.newPage();
  const gid = node.groups[0].id;
  const r = await page.request.post(`${node.base}/g/${gid}/ask`, {
    form: { body: 'forged question' },
    maxRedirects: 0,
  });
  assert.equal(r.status(), 403);
  assert.match(await r.text(), /CSRF|表单已过期/);
  const wrong = await page.request.post(`${node.base}/g/${gid}/ask`, {
    form: { body: 'forged question', csrf: 'x'.repeat(64) },
    maxRedirects: 0,
  });
  assert.equal(wrong.status(), 403);
  // A cross-site form post is refused as well, even with a token.
  await page.goto(`${node.base}/g/${gid}`);
  const token = await page.locator('input[name=csrf]').first().inputValue();
  const cross = await page.request.post(`${node.base}/g/${gid}/ask`, {
    form: { body: 'forged question', csrf: token },
    headers: { origin: 'https://evil.example' },
    maxRedirects: 0,
  });
  assert.equal(cross.status(), 403);
  await page.goto(`${node.base}/g/${gid}`);
  assert.equal(await page.getByText('forged question').count(), 0);
  // The pages carry a Content-Security-Policy and refuse framing.
  const head = await page.request.get(`${node.base}/g/${gid}`);
  assert.match(head.headers()['content-security-policy'], /default-src 'self'/);
  assert.equal(head.headers()['x-frame-options'], 'DENY');
  await ctx.close();
});

test('logged-out visitors are sent to the login page and back', async () => {
  const ctx = await noJs();
  const page = await ctx.newPage();
  await page.goto(`${node.base}/doctor/queue`);
  assert.match(page.url(), /\/login\?next=%2Fdoctor%2Fqueue$/);
  await measure(page, 'login');
  await shot(page, 'login');
  await axeCheck(ctx, page.url(), 'login');
  await page.getByLabel('用户名').fill('dr.zhang');
  await page.getByLabel(/^密码$/).fill(state.zhangPassword);
  await page.getByRole('button', { name: '登录' }).click();
  await page.getByText('目前没有待回答的问题。').waitFor();
  assert.match(page.url(), /\/doctor\/queue$/);
  await page.getByRole('button', { name: '退出登录' }).click();
  await page.getByRole('heading', { name: '登录' }).waitFor();
  await ctx.close();
});
