// The widget's CSS, inside its Shadow DOM: nothing here reaches the host page and the host
// page's CSS does not reach in (`:host { all: initial }` resets what would inherit).
export function css(colour) {
  return `
:host { all: initial; }
[hidden] { display: none !important; }
svg { width: 24px; height: 24px; fill: none; stroke: currentColor; stroke-width: 2; stroke-linecap: round; stroke-linejoin: round; vertical-align: middle; }
* { box-sizing: border-box; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
.launcher { position: fixed; right: 20px; bottom: 20px; width: 56px; height: 56px; border-radius: 50%;
  border: 0; background: ${colour}; color: #fff; cursor: pointer; box-shadow: 0 4px 14px rgba(0,0,0,.25);
  z-index: 2147483000; display: flex; align-items: center; justify-content: center; }
.launcher svg { width: 28px; height: 28px; }
.launcher:focus-visible, button:focus-visible, textarea:focus-visible, input:focus-visible {
  outline: 3px solid #111; outline-offset: 2px; }
.badge { position: absolute; top: -4px; right: -4px; min-width: 22px; height: 22px; padding: 0 6px;
  border-radius: 11px; background: #d11; color: #fff; font-size: 13px; line-height: 22px; font-weight: 700; }
.badge[hidden] { display: none; }
.panel { position: fixed; right: 20px; bottom: 88px; width: 370px; height: min(600px, calc(100vh - 110px));
  background: #fff; color: #111; border-radius: 12px; box-shadow: 0 8px 30px rgba(0,0,0,.3);
  display: flex; flex-direction: column; overflow: hidden; z-index: 2147483001; font-size: 15px; }
.panel[hidden] { display: none; }
@media (max-width: 480px) {
  .panel { inset: 0; width: 100vw; height: 100vh; height: 100dvh; border-radius: 0; }
}
header { background: ${colour}; color: #fff; padding: 12px 14px; display: flex; align-items: center; gap: 10px; }
header img { width: 36px; height: 36px; border-radius: 50%; background: #fff; }
header h2 { font-size: 16px; margin: 0; flex: 1; }
header .close { background: transparent; border: 0; color: #fff; font-size: 24px; cursor: pointer; width: 36px; height: 36px; }
.notice { padding: 8px 14px; background: #fff7d6; color: #5a4600; font-size: 13px; }
.notice[hidden] { display: none; }
.log { flex: 1; overflow-y: auto; padding: 12px; display: flex; flex-direction: column; gap: 8px; background: #f6f7f9; }
.msg { max-width: 80%; padding: 8px 11px; border-radius: 12px; white-space: pre-wrap; word-wrap: break-word; }
.msg.mine { align-self: flex-end; background: ${colour}; color: #fff; border-bottom-right-radius: 3px; }
.msg.theirs { align-self: flex-start; background: #fff; border: 1px solid #dde; border-bottom-left-radius: 3px; }
.msg .who { display: flex; align-items: center; gap: 6px; font-size: 12px; font-weight: 600; margin-bottom: 3px; color: #444; }
.msg .who img { width: 18px; height: 18px; border-radius: 50%; }
.msg img.media { max-width: 100%; border-radius: 6px; display: block; margin-top: 4px; }
.msg a { color: inherit; }
.msg .meta { font-size: 11px; opacity: .8; margin-top: 3px; text-align: right; }
.greeting { align-self: flex-start; background: #fff; border: 1px solid #dde; }
.typing { font-size: 12px; color: #555; padding: 0 14px 4px; min-height: 18px; background: #f6f7f9; }
.ended { text-align: center; font-size: 13px; color: #555; padding: 6px; }
form.composer { display: flex; gap: 6px; padding: 10px; border-top: 1px solid #e3e3e3; align-items: flex-end; }
form.composer textarea { flex: 1; resize: none; border: 1px solid #ccc; border-radius: 8px; padding: 8px; font-size: 15px; max-height: 120px; }
form.composer button { border: 0; border-radius: 8px; padding: 9px 12px; background: ${colour}; color: #fff; cursor: pointer; }
form.composer button.attach { background: #eee; color: #222; }
.panel.dragging .log { outline: 3px dashed ${colour}; outline-offset: -6px; }
form.prechat { padding: 14px; display: flex; flex-direction: column; gap: 10px; border-top: 1px solid #e3e3e3; }
form.prechat label { display: flex; flex-direction: column; gap: 4px; font-size: 13px; }
form.prechat input { border: 1px solid #ccc; border-radius: 8px; padding: 8px; font-size: 15px; }
form.prechat button { border: 0; border-radius: 8px; padding: 10px; background: ${colour}; color: #fff; cursor: pointer; }
.error { color: #b00; font-size: 13px; padding: 4px 14px; }
.error:empty { display: none; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
`;
}
