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

// ---------------------------------------------------------------------------------------------
// Photos, names per group, creating groups, member management, paging.

/** A small JPEG made by Chromium's own encoder (a JavaScript-enabled scratch page). */
async function makeJpeg() {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const dataUrl = await page.evaluate(() => {
    const c = document.createElement('canvas');
    c.width = 64; c.height = 48;
    const g = c.getContext('2d');
    g.fillStyle = '#c0504d'; g.fillRect(0, 0, 64, 48);
    g.fillStyle = '#4f81bd'; g.fillRect(16, 12, 32, 24);
    return c.toDataURL('image/jpeg', 0.9);
  });
  await ctx.close();
  return Buffer.from(dataUrl.split(',')[1], 'base64');
}

/** An APP1 Exif segment with a camera name and a GPS position (N 39° 37' 45.12", Tangshan). */
function exifGpsSegment() {
  const t = [];
  const u16 = (n) => t.push((n >> 8) & 255, n & 255);
  const u32 = (n) => t.push((n >>> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255);
  const entry = (tag, type, count, value) => { u16(tag); u16(type); u32(count); t.push(...value); };
  t.push(0x4d, 0x4d, 0x00, 0x2a); u32(8);
  u16(2); // IFD0 at 8: two entries, ends at 8 + 2 + 24 + 4 = 38
  entry(0x010f, 2, 10, [0, 0, 0, 38]); // Make, at 38
  entry(0x8825, 4, 1, [0, 0, 0, 48]); // GPS IFD, at 48
  u32(0);
  t.push(...Buffer.from('SecretCam\0')); // 38..48
  u16(2); // GPS IFD at 48: two entries, ends at 48 + 2 + 24 + 4 = 78
  entry(0x0001, 2, 2, [0x4e, 0, 0, 0]); // GPSLatitudeRef "N"
  entry(0x0002, 5, 3, [0, 0, 0, 78]); // GPSLatitude, at 78
  u32(0);
  for (const [n, d] of [[39, 1], [37, 1], [4512, 100]]) { u32(n); u32(d); }
  const payload = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), Buffer.from(t)]);
  const len = payload.length + 2;
  return Buffer.concat([Buffer.from([0xff, 0xe1, len >> 8, len & 255]), payload]);
}

/** The markers of a JPEG's segments before its image data (0xe1: APP1, where EXIF lives). */
function jpegMarkers(bytes) {
  const markers = [];
  let i = 2;
  while (i + 4 <= bytes.length && bytes[i] === 0xff) {
    const marker = bytes[i + 1];
    markers.push(marker);
    if (marker === 0xda) break;
    i += 2 + ((bytes[i + 2] << 8) | bytes[i + 3]);
  }
  return markers;
}

async function apiToken(username, password) {
  const r = await fetch(`${node.base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  assert.equal(r.status, 200);
  return (await r.json()).token;
}

async function api(token, method, path, body) {
  const r = await fetch(`${node.base}${path}`, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: await r.json().catch(() => null) };
}

test('patient attaches a photo to a question; it is shown and served without EXIF or GPS', async () => {
  const plain = await makeJpeg();
  const tagged = Buffer.concat([plain.subarray(0, 2), exifGpsSegment(), plain.subarray(2)]);
  assert.ok(tagged.includes(Buffer.from('SecretCam')) && tagged.includes(Buffer.from('Exif\0\0', 'latin1')));

  const ctx = await browser.newContext({ javaScriptEnabled: false, storageState: state.patientStorage, locale: 'zh-CN' });
  const page = await ctx.newPage();
  await page.goto(`${node.base}/g/${node.groups[0].id}`);
  await page.getByText('照片保存前会去除拍摄地点（GPS）等隐藏信息').first().waitFor();
  await page.getByLabel('您的问题').fill('术后第三天的伤口，这样正常吗？');
  await page.getByLabel('照片（可选）').setInputFiles({ name: 'IMG_0001.jpg', mimeType: 'image/jpeg', buffer: tagged });
  await shot(page, 'patient-ask-photo');
  await page.getByRole('button', { name: '发布问题' }).click();
  await page.locator('.main-post .body').waitFor();
  assert.match(await page.locator('.main-post .body').innerText(), /术后第三天的伤口/);
  const img = page.locator('.main-post img.photo');
  assert.equal(await img.count(), 1);
  const box = await img.boundingBox();
  assert.ok(box && box.width > 0 && box.height > 0, 'the photo is shown');
  const src = await img.getAttribute('src');
  const served = await page.request.get(new URL(src, node.base).href);
  assert.equal(served.status(), 200);
  assert.equal(served.headers()['content-type'], 'image/jpeg');
  const bytes = await served.body();
  assert.deepEqual([...bytes.subarray(0, 2)], [0xff, 0xd8]);
  assert.ok(!bytes.includes(Buffer.from('Exif', 'latin1')), 'no Exif block');
  assert.ok(!bytes.includes(Buffer.from('SecretCam')), 'no camera name');
  assert.ok(!jpegMarkers(bytes).includes(0xe1), 'no APP1 segment, where EXIF and its GPS position live');
  assert.ok(jpegMarkers(tagged).includes(0xe1), 'the uploaded file had one');
  await measure(page, 'thread-with-photo');
  await shot(page, 'patient-thread-photo');
  state.photoThreadUrl = page.url();

  // A file that is not a photo comes back with the text kept and a clear message.
  await page.getByLabel('您的回复').fill('再补一张化验单');
  await page.getByLabel('照片（可选）').setInputFiles({ name: 'scan.gif', mimeType: 'image/gif', buffer: Buffer.from('GIF89a\x01\x00\x01\x00') });
  await page.getByRole('button', { name: '发布回复' }).click();
  await page.getByText('不能上传这种文件').waitFor();
  assert.equal(await page.getByLabel('您的回复').inputValue(), '再补一张化验单');
  await shot(page, 'patient-photo-refused');
  await ctx.close();
});

test('patient chooses a name for the group and sees it on their post', async () => {
  const ctx = await browser.newContext({ javaScriptEnabled: false, storageState: state.patientStorage, locale: 'zh-CN' });
  const page = await ctx.newPage();
  await page.goto(`${node.base}/g/${node.groups[0].id}`);
  await page.getByRole('heading', { name: '您在本群的名字' }).waitFor();
  const field = page.getByLabel('在本群显示的名字');
  assert.equal(await field.inputValue(), '康复中的王阿姨');
  await field.fill('   ');
  await page.getByRole('button', { name: '保存', exact: true }).click();
  await page.getByText('请填写“在本群显示的名字”。').waitFor();
  await page.getByLabel('在本群显示的名字').fill('乳腺术后的王姐');
  await page.getByRole('button', { name: '保存', exact: true }).click();
  await page.getByText('已保存：您在本群显示为“乳腺术后的王姐”。').waitFor();
  await shot(page, 'patient-group-name');
  await page.goto(state.photoThreadUrl);
  assert.equal(await page.locator('.main-post .author').innerText(), '乳腺术后的王姐');
  await ctx.close();
  // The doctor sees it too.
  const dctx = await noJs();
  const dpage = await dctx.newPage();
  await login(dpage, 'dr.li', PASSWORDS.drli);
  await dpage.goto(state.photoThreadUrl);
  assert.equal(await dpage.locator('.main-post .author').innerText(), '乳腺术后的王姐');
  await dctx.close();
});

test('a doctor creates a group from the page', async () => {
  const ctx = await noJs();
  const page = await ctx.newPage();
  await login(page, 'dr.li', PASSWORDS.drli);
  await page.getByRole('link', { name: '创建新群' }).click();
  await page.getByRole('heading', { name: '创建新群' }).waitFor();
  await measure(page, 'new-group');
  await axeCheck(ctx, page.url(), 'new-group');
  await page.getByLabel('群名称').fill('心衰患者之家 · 唐山');
  await page.getByLabel('病种').fill('慢性心力衰竭');
  await page.getByLabel('疾病编码（可选，如 ICD-10 C50）').fill('i50!');
  await page.getByLabel('城市').fill('唐山');
  await page.getByLabel('群简介（可选）').fill('出院后的自我管理：体重、限盐、用药。');
  await page.getByLabel('全体群成员').check();
  await page.getByRole('button', { name: '创建群' }).click();
  // A mistake comes back with everything typed and the field named.
  await page.getByText('“疾病编码（可选，如 ICD-10 C50）”只能包含大写字母').waitFor();
  assert.equal(await page.getByLabel('群名称').inputValue(), '心衰患者之家 · 唐山');
  assert.ok(await page.getByLabel('全体群成员').isChecked());
  await shot(page, 'new-group-error');
  await page.getByLabel('疾病编码（可选，如 ICD-10 C50）').fill('I50');
  await page.getByRole('button', { name: '创建群' }).click();
  await page.getByRole('heading', { name: '心衰患者之家 · 唐山' }).waitFor();
  await page.getByText('慢性心力衰竭 · 唐山 · 1 位成员').waitFor();
  state.newGroupUrl = page.url();
  state.newGroupId = new URL(page.url()).pathname.split('/')[2];
  await shot(page, 'new-group-created');
  await ctx.close();
});

test('a moderator admits a join request and removes a member', async () => {
  // The patient asks to join the new group (with its id, from the doctor).
  const patient = await apiToken('wang.ayi', 'patient-password-1');
  const asked = await api(patient, 'POST', `/api/v1/groups/${state.newGroupId}/join-requests`, { message: '我上个月出院，想学习限盐。' });
  assert.equal(asked.status, 202);

  const ctx = await noJs();
  const page = await ctx.newPage();
  await login(page, 'dr.li', PASSWORDS.drli);
  await page.goto(state.newGroupUrl);
  await page.getByRole('link', { name: '成员' }).click();
  await page.getByRole('heading', { name: '入群申请' }).waitFor();
  await page.getByText('我上个月出院，想学习限盐。').waitFor();
  await measure(page, 'members');
  await shot(page, 'members-request');
  await axeCheck(ctx, page.url(), 'members');
  await page.getByRole('button', { name: '同意康复中的王阿姨入群' }).click();
  await page.getByText('目前没有入群申请。').waitFor();
  await page.getByRole('heading', { name: '2 位成员' }).waitFor();
  await shot(page, 'members-admitted');

  // The patient is in and sees the group; then the moderator removes them, with a reason.
  const inGroup = await api(patient, 'GET', `/api/v1/groups/${state.newGroupId}`);
  assert.equal(inGroup.status, 200);
  await page.getByText('将康复中的王阿姨移出本群…').click();
  await page.getByLabel('原因（可选，记入管理日志）').fill('测试移出');
  await page.getByRole('button', { name: '移出本群', exact: true }).click();
  await page.getByRole('heading', { name: '1 位成员' }).waitFor();
  assert.equal(await page.getByText('康复中的王阿姨').count(), 0);
  const gone = await api(patient, 'GET', `/api/v1/groups/${state.newGroupId}`);
  assert.equal(gone.status, 404);
  // Both decisions are in the moderation log.
  await page.goto(`${node.base}/g/${state.newGroupId}/moderation`);
  const log = await page.locator('table').innerText();
  assert.match(log, /remove_member/);
  assert.match(log, /approve_join/);
  assert.match(log, /测试移出/);
  await ctx.close();
});

test('the feed pages back to older posts with plain links', async () => {
  const doctor = await apiToken('dr.li', PASSWORDS.drli);
  const gid = node.groups[1].id;
  for (let i = 0; i < 25; i++) {
    const r = await api(doctor, 'POST', `/api/v1/groups/${gid}/posts`, { kind: 'question', title: `饮食问题 ${String(i).padStart(2, '0')}`, body: '每天主食吃多少合适？' });
    assert.equal(r.status, 201);
  }
  const ctx = await noJs();
  const page = await ctx.newPage();
  await login(page, 'dr.li', PASSWORDS.drli);
  await page.goto(`${node.base}/g/${gid}`);
  const titles = async () => page.locator('main article h3 a').allInnerTexts();
  const first = await titles();
  assert.equal(first.length, 20, first.join('|'));
  assert.ok(first.includes('本周六上午健康讲座'), 'the pinned announcement leads the first page');
  assert.ok(first.includes('饮食问题 24'));
  await page.getByRole('link', { name: '更早的帖子' }).click();
  await page.getByRole('heading', { name: '更早的帖子' }).waitFor();
  assert.match(page.url(), /\?cursor=/);
  const second = await titles();
  assert.equal(second.length, 6, second.join('|'));
  assert.ok(second.includes('饮食问题 00'));
  assert.equal(new Set([...first, ...second]).size, 26, 'every post once');
  assert.equal(await page.getByRole('link', { name: '更早的帖子' }).count(), 0);
  await measure(page, 'feed-older');
  await shot(page, 'feed-older');
  await page.getByRole('link', { name: '回到最新的帖子' }).click();
  assert.equal((await titles()).length, 20);
  await ctx.close();
});
