/**
 * QR scanning from the camera or a photo (lazy-loaded: nothing of it is on the critical path).
 * BarcodeDetector where the browser has it for QR codes (Chromium on Android and macOS), the
 * `qr` package's JS decoder otherwise (Firefox, Safari, desktop Linux). Only the decoded text
 * leaves this module; frames stay on the device.
 */

/** Scan this often: fast enough to feel instant, slow enough to leave a phone's CPU alone. */
const SCAN_INTERVAL_MS = 200;
/** Frames are scaled down to this width before JS decoding (QR codes on a screen are large). */
const MAX_DECODE_WIDTH_PX = 720;

interface BarcodeDetectorLike {
  detect(source: CanvasImageSource | ImageBitmap): Promise<readonly { rawValue: string }[]>;
}
interface BarcodeDetectorClass {
  new (options: { formats: string[] }): BarcodeDetectorLike;
  getSupportedFormats(): Promise<string[]>;
}

type Decode = (source: HTMLVideoElement | ImageBitmap, width: number, height: number) => Promise<string | null>;

async function nativeDecoder(): Promise<Decode | null> {
  const Detector = (globalThis as { BarcodeDetector?: BarcodeDetectorClass }).BarcodeDetector;
  if (Detector === undefined) return null;
  try {
    if (!(await Detector.getSupportedFormats()).includes('qr_code')) return null;
    const detector = new Detector({ formats: ['qr_code'] });
    return async (source) => (await detector.detect(source))[0]?.rawValue ?? null;
  } catch {
    return null;
  }
}

async function jsDecoder(): Promise<Decode> {
  const { decodeQR } = await import('qr/decode.js');
  const canvas = document.createElement('canvas');
  const context = canvas.getContext('2d', { willReadFrequently: true });
  if (context === null) throw new Error('This browser cannot read images for scanning.');
  return async (source, width, height) => {
    const scale = Math.min(1, MAX_DECODE_WIDTH_PX / width);
    canvas.width = Math.round(width * scale);
    canvas.height = Math.round(height * scale);
    context.drawImage(source, 0, 0, canvas.width, canvas.height);
    const image = context.getImageData(0, 0, canvas.width, canvas.height);
    try {
      return decodeQR({ width: image.width, height: image.height, data: image.data });
    } catch {
      return null; // no code in this frame
    }
  };
}

async function decoder(): Promise<Decode> {
  return (await nativeDecoder()) ?? jsDecoder();
}

export type CameraProblem = 'no-camera' | 'denied' | 'failed';

export class CameraError extends Error {
  constructor(
    readonly problem: CameraProblem,
    message: string,
  ) {
    super(message);
  }
}

/** Starts the rear camera in `video` and calls `onText` once with the first code found. */
export async function scanCamera(video: HTMLVideoElement, onText: (text: string) => void): Promise<() => void> {
  if (navigator.mediaDevices?.getUserMedia === undefined) throw new CameraError('no-camera', 'This browser gives Covey no camera here.');
  let stream: MediaStream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false });
  } catch (error) {
    const name = error instanceof DOMException ? error.name : '';
    if (name === 'NotAllowedError' || name === 'SecurityError') throw new CameraError('denied', 'Covey may not use the camera. Allow it in the browser’s site settings, or paste the link instead.');
    if (name === 'NotFoundError' || name === 'OverconstrainedError') throw new CameraError('no-camera', 'No camera was found on this device.');
    throw new CameraError('failed', 'The camera could not be started.');
  }
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stop = () => {
    stopped = true;
    clearTimeout(timer);
    for (const track of stream.getTracks()) track.stop();
    video.srcObject = null;
  };
  try {
    video.srcObject = stream;
    await video.play();
    const decode = await decoder();
    const tick = async () => {
      if (stopped) return;
      if (video.videoWidth > 0) {
        const text = await decode(video, video.videoWidth, video.videoHeight).catch(() => null);
        if (text !== null && text !== '' && !stopped) {
          stop();
          onText(text);
          return;
        }
      }
      timer = setTimeout(() => void tick(), SCAN_INTERVAL_MS);
    };
    void tick();
  } catch (error) {
    stop();
    throw error;
  }
  return stop;
}

/** Reads a code from a photo or screenshot (for devices without a camera, or a code sent as an image). */
export async function scanImageFile(file: Blob): Promise<string | null> {
  const bitmap = await createImageBitmap(file);
  try {
    return await (await decoder())(bitmap, bitmap.width, bitmap.height);
  } finally {
    bitmap.close();
  }
}
